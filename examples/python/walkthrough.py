#!/usr/bin/env python3
"""The ticketyboo walkthrough in Python.

Sign up, list a ticket, order it, watch another buyer be refused while the
lock holds, let the lock expire on a manual clock, pay with the fake
provider, and read the events in order.

    pip install ./bindings/python
    python examples/python/walkthrough.py
"""

import ticketyboo as tb


def main() -> None:
    clock = tb.ManualClock(1_700_000_000_000)  # 2023-11-14T22:13:20Z, moved by hand
    payments = tb.FakePayments()

    with tb.Market(clock=clock, payments=payments, lock_minutes=15, password_cost="min") as market:
        # Everything the market does reaches a subscriber, in order.
        market.subscribe("printer", lambda e: print(f"    event {e.seq:2}: {e.type} {e.aggregate_id[:8]}"))

        seller, _ = market.signup("seller@example.com", "correct horse battery")
        alice, _ = market.signup("alice@example.com", "alice's long password")
        bob, _ = market.signup("bob@example.com", "bob's long password")
        print(f"signed up {seller.email}, {alice.email}, {bob.email}")

        ticket = market.create_ticket(seller, "Front row, night one", 12_50, "EUR")
        print(f"listed {ticket.title!r} at {tb.format_money(ticket.price_minor, ticket.currency)} {ticket.currency}")
        print("for sale:", [t.title for t in market.tickets(available_only=True)])

        order = market.order(alice, ticket)
        print(f"alice ordered it; the lock holds until {order.expires_at_ms} (status {order.status.value})")
        try:
            market.order(bob, ticket)
        except tb.TicketLocked as err:
            print(f"bob is refused: {err} [{err.code}]")

        clock.advance(minutes=16)
        print(f"16 minutes later alice's order reads {market.get_order(alice, order.id).status.value}")
        stats = market.tick()
        print(f"the tick expired {stats.orders_expired} order(s)")
        try:
            market.pay(alice, order, "tok_visa")
        except tb.Expired as err:
            print(f"alice can no longer pay: {err} [{err.code}]")

        order = market.order(bob, ticket)
        charge = market.pay(bob, order, "tok_visa")
        print(f"bob paid: charge {charge.status.value}, {charge.amount_minor} {charge.currency} via {charge.provider}")
        print(f"the ticket now belongs to bob: {market.ticket(ticket.id).owner_id == bob.id}")
        print(f"fake provider: {payments.stats}")

        print("events, in order:")
        market.dispatch()
        assert [e.seq for e in market.events()] == list(range(1, market.last_event_seq() + 1))


if __name__ == "__main__":
    main()
