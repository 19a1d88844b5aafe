"""The walkthrough: sign up, list, order, lock refused, expiry, pay, events."""

import json

import pytest

import ticketyboo as tb
from conftest import START_MS


def test_walkthrough(market, clock, payments):
    seller, seller_session = market.signup("Seller@Example.com ", "correct horse battery")
    buyer, _ = market.signup("buyer@example.com", "another good password")
    rival, _ = market.signup("rival@example.com", "yet another password")
    assert seller.email == "seller@example.com"  # trimmed, lower-cased
    assert market.user_for_session(seller_session) == seller

    ticket = market.create_ticket(seller, "Front row, night one", 12_50, "eur")
    assert (ticket.price_minor, ticket.currency, ticket.status) == (1250, "EUR", tb.TicketStatus.LISTED)
    assert [t.id for t in market.tickets(available_only=True)] == [ticket.id]

    order = market.order(buyer, ticket)
    assert order.status == tb.OrderStatus.CREATED
    assert order.expires_at_ms == START_MS + 15 * 60_000
    assert market.ticket(ticket.id).locked
    assert list(market.tickets(available_only=True)) == []

    with pytest.raises(tb.TicketLocked) as refused:
        market.order(rival, ticket)
    assert refused.value.code == "ELOCKED"
    assert refused.value.status == tb.Status.ELOCKED

    # The lock lapses: the order reads as expired at once, the tick records it.
    clock.advance(minutes=15, ms=1)
    assert market.get_order(buyer, order.id).status == tb.OrderStatus.EXPIRED
    assert market.next_deadline() is not None
    stats = market.tick()
    assert stats.orders_expired == 1
    with pytest.raises(tb.Expired):
        market.pay(buyer, order, "tok_visa")

    second = market.order(rival, ticket)
    charge = market.pay(rival, second, "tok_visa")
    assert charge.status == tb.ChargeStatus.SUCCEEDED
    assert charge.amount_minor == 1250
    assert market.get_order(rival, second.id).status == tb.OrderStatus.COMPLETE
    bought = market.ticket(ticket.id)
    assert bought.owner_id == rival.id and bought.status == tb.TicketStatus.UNLISTED
    assert payments.stats == tb.FakeStats(calls=1, charges=1, refunds=0, charged_minor=1250)

    events = list(market.events())
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events] == [
        "UserCreated", "UserCreated", "UserCreated", "TicketCreated",
        "OrderCreated", "TicketUpdated",
        "OrderExpired", "TicketUpdated",
        "OrderCreated", "TicketUpdated",
        "ChargeCreated", "OrderAwaitingPayment", "TicketUpdated",
        "ChargeSucceeded", "OrderCompleted", "TicketUpdated",
    ]
    assert events[4].subject == "order:created"
    assert events[4].data["id"] == order.id
    assert market.last_event_seq() == events[-1].seq
    assert list(market.events(after=events[-2].seq)) == events[-1:]


def test_records_are_immutable_snapshots_with_dict_and_json(market, people):
    seller, _, _ = people
    ticket = market.create_ticket(seller, "Balcony", 4000)
    with pytest.raises(AttributeError):
        ticket.price_minor = 1  # type: ignore[misc]
    d = ticket.to_dict()
    assert d["status"] == "listed" and d["currency"] == "USD" and d["order_id"] is None
    assert json.loads(ticket.to_json()) == d
    session = market.signin("seller@example.com", "seller-password")
    assert session.token not in repr(session)
    assert session.to_dict()["token"] == session.token
    # The raw proxies are read-only too.
    raw = tb.core.ticket_get(market._m(), ticket.id)
    with pytest.raises(AttributeError):
        raw.title = "changed"
    assert raw.title == "Balcony"


def test_tickets_iterates_over_every_page(market, people):
    seller, buyer, _ = people
    made = [market.create_ticket(seller, f"Seat {i}", 100 + i) for i in range(23)]
    market.create_ticket(buyer, "Someone else's seat", 999)
    got = list(market.tickets(owner=seller, page_size=5))
    assert [t.id for t in got] == [t.id for t in made]
    items, cursor = market.tickets_page(limit=10)
    assert len(items) == 10 and cursor is not None
    assert [t.title for t in market.tickets(title_contains="SEAT 1")][:2] == ["Seat 1", "Seat 10"]


def test_orders_cancel_update_and_refund(market, people, payments):
    seller, buyer, rival = people
    ticket = market.create_ticket(seller, "Stalls", 2000)
    with pytest.raises(tb.Forbidden):
        market.update_ticket(buyer, ticket, title="Mine now")
    updated = market.update_ticket(seller, ticket, price_minor=2500, expected_version=ticket.version)
    assert updated.price_minor == 2500 and updated.title == "Stalls"
    with pytest.raises(tb.Conflict):
        market.update_ticket(seller, ticket, title="Stale", expected_version=ticket.version)

    order = market.order(buyer, ticket)
    with pytest.raises(tb.TicketLocked):
        market.update_ticket(seller, ticket, price_minor=1)
    with pytest.raises(tb.Forbidden):
        market.get_order(rival, order.id)
    assert market.cancel(buyer, order).status == tb.OrderStatus.CANCELLED
    assert [o.id for o in market.orders(buyer)] == [order.id]

    order = market.order(rival, ticket)
    market.pay(rival, order, "tok_visa")
    refund = market.refund(seller, order, "event cancelled")
    assert refund.status == tb.ChargeStatus.REFUNDED and refund.refund_reason == "event cancelled"
    assert market.latest_charge(rival, order).id == refund.id
    assert market.ticket(ticket.id).owner_id == seller.id
    assert payments.stats.charged_minor == 0
    relisted = market.set_listed(seller, ticket, True)
    assert relisted.status == tb.TicketStatus.LISTED


def test_declined_payment_cancels_the_order(market, people, payments):
    seller, buyer, _ = people
    ticket = market.create_ticket(seller, "Pit", 5000)
    order = market.order(buyer, ticket)
    with pytest.raises(tb.PaymentDeclined) as declined:
        market.pay(buyer, order, "tok_chargeDeclinedInsufficientFunds")
    assert declined.value.code == "EDECLINED"
    charge = market.latest_charge(buyer, order)
    assert charge.status == tb.ChargeStatus.FAILED and charge.decline_code == "insufficient_funds"
    assert market.get_order(buyer, order.id).status == tb.OrderStatus.CANCELLED


def test_scripted_timeout_is_reconciled_by_tick(market, people, payments, clock):
    seller, buyer, _ = people
    ticket = market.create_ticket(seller, "Box", 7000)
    order = market.order(buyer, ticket)
    payments.script("tok_visa", "timeout_after_charge")
    charge = market.pay(buyer, order, "tok_visa")
    assert charge.status == tb.ChargeStatus.PENDING
    clock.advance(seconds=5)
    stats = market.tick()
    assert stats.payments_retried == 1 and stats.payments_resolved == 1
    assert market.get_order(buyer, order.id).status == tb.OrderStatus.COMPLETE
    with pytest.raises(tb.InvalidArgument) as bad:
        payments.script("tok_visa", "explode")
    assert bad.value.field == "outcome"


def test_money_helpers():
    assert tb.parse_money("19.99", "USD") == 1999
    assert tb.parse_money("20", "JPY") == 20
    assert tb.format_money(1999, "USD") == "19.99"
    assert tb.currency_exponent("KWD") == 3
    assert tb.currency_exponent("nope") is None
    with pytest.raises(tb.InvalidArgument) as bad:
        tb.parse_money("19.999", "USD")
    assert bad.value.field == "price"


def test_version_matches_the_library():
    assert tb.__version__ == tb.library_version()
