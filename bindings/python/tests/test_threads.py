"""Several Python threads on one market; the GIL released around blocking calls."""

import threading
import time

import ticketyboo as tb


def test_threads_racing_for_the_same_tickets_get_one_winner_each(tmp_path, clock):
    buyers_n, tickets_n = 8, 20
    with tb.Market(tmp_path / "race.db", clock=clock, password_cost="min") as market:
        seller, _ = market.signup("seller@example.com", "seller-password")
        tickets = [market.create_ticket(seller, f"Seat {i}", 1000 + i) for i in range(tickets_n)]
        buyers = [market.signup(f"b{i}@example.com", "buyer-password")[0] for i in range(buyers_n)]
        wins = {t.id: [] for t in tickets}
        losses = []
        errors = []
        start = threading.Barrier(buyers_n)

        def buyer_thread(buyer):
            start.wait()
            for ticket in tickets:
                try:
                    order = market.order(buyer, ticket)
                    wins[ticket.id].append(order.buyer_id)
                except tb.TicketLocked:
                    losses.append(ticket.id)
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=buyer_thread, args=(b,)) for b in buyers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert all(len(w) == 1 for w in wins.values()), wins
        assert len(losses) == tickets_n * (buyers_n - 1)
        for ticket in tickets:
            fresh = market.ticket(ticket.id)
            assert fresh.locked and market.get_order(wins[ticket.id][0], fresh.order_id).live


def test_the_gil_is_released_while_a_password_is_hashed(clock):
    # "moderate" argon2id takes a good fraction of a second (256 MiB).  While
    # one thread signs up, another Python thread must keep running.
    with tb.Market(clock=clock, password_cost="moderate") as market:
        running = threading.Event()
        stop = threading.Event()
        spins = [0]

        def spinner():
            running.set()
            while not stop.is_set():
                spins[0] += 1

        t = threading.Thread(target=spinner)
        t.start()
        running.wait()
        before = spins[0]
        started = time.perf_counter()
        market.signup("slow@example.com", "a moderately hashed password")
        elapsed = time.perf_counter() - started
        during = spins[0] - before
        stop.set()
        t.join()
    print(f"\nsignup at moderate cost took {elapsed * 1000:.0f} ms; "
          f"the other thread looped {during} times meanwhile")
    # With the GIL held for the whole hash the other thread could not loop at all.
    assert during > 10_000


def test_ticks_and_orders_from_several_threads(clock, payments):
    with tb.Market(clock=clock, payments=payments, password_cost="min") as market:
        seller, _ = market.signup("seller@example.com", "seller-password")
        seen = []
        market.subscribe("count", lambda e: seen.append(e.seq))
        stop = threading.Event()
        errors = []

        def ticker():
            while not stop.is_set():
                try:
                    market.tick()
                except Exception as exc:  # pragma: no cover
                    errors.append(exc)

        tickers = [threading.Thread(target=ticker) for _ in range(2)]
        for t in tickers:
            t.start()
        for i in range(30):
            buyer, _ = market.signup(f"b{i}@example.com", "buyer-password")
            order = market.order(buyer, market.create_ticket(seller, f"Seat {i}", 100))
            market.pay(buyer, order, "tok_visa")
        stop.set()
        for t in tickers:
            t.join()
        market.dispatch()
        assert errors == []
        # Delivered at least once, in order, never on two threads at once.
        assert sorted(set(seen)) == list(range(1, market.last_event_seq() + 1))
        assert seen == sorted(seen)
