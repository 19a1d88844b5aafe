"""No leaks: 100k calls through the binding leave the RSS (nearly) where it was."""

import gc
import os
import sys

import ticketyboo as tb

PAGE = os.sysconf("SC_PAGE_SIZE")
CALLS = 100_000
BOUND_MB = 10.0


def rss_bytes():
    # /proc/self/statm: size resident shared ... (in pages)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def workload(market, seller, buyer, rival, ticket, session, order, n):
    """n calls, a mix of successes, failures (exceptions) and pages."""
    calls = 0
    while calls < n:
        market.ticket(ticket.id)                                  # record copy
        market.user_for_session(session)                          # session lookup
        try:
            market.order(rival, ticket)                           # TicketLocked
        except tb.TicketLocked:
            pass
        try:
            market.create_ticket(seller, "", 1)                   # InvalidArgument with field
        except tb.InvalidArgument:
            pass
        market.tickets_page(limit=5)                              # page + dup'd records
        list(market.events(after=max(0, market.last_event_seq() - 3), page_size=3))
        market.get_order(buyer, order.id)
        market.tick()
        calls += 9
    return calls


def test_no_leak_across_100k_calls(clock, payments):
    with tb.Market(clock=clock, payments=payments, password_cost="min") as market:
        seller, _ = market.signup("seller@example.com", "seller-password")
        buyer, session = market.signup("buyer@example.com", "buyer-password")
        rival, _ = market.signup("rival@example.com", "rival-password")
        for i in range(10):
            market.create_ticket(seller, f"Seat {i}", 100 + i)
        ticket = market.create_ticket(seller, "Locked seat", 999)
        order = market.order(buyer, ticket)
        subscribed = []
        market.subscribe("sink", lambda e: subscribed.append(e.seq) if len(subscribed) < 10 else None)
        args = (market, seller, buyer, rival, ticket, session, order)

        workload(*args, 20_000)  # warm-up: caches, allocator arenas, interned strings
        gc.collect()
        before = rss_bytes()
        done = workload(*args, CALLS)
        gc.collect()
        after = rss_bytes()

    growth_mb = (after - before) / 1e6
    print(
        f"\nRSS before {before / 1e6:.1f} MB, after {done} calls {after / 1e6:.1f} MB: "
        f"growth {growth_mb:+.2f} MB (bound {BOUND_MB} MB)",
        file=sys.stderr,
    )
    assert done >= CALLS
    assert growth_mb < BOUND_MB
