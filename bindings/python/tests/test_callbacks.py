"""Event subscribers: Python callables called from the library's dispatch."""

import gc
import sys
import threading
import weakref

import pytest

import ticketyboo as tb


def test_subscriber_gets_every_event_in_order(market, people):
    seen = []
    market.subscribe("audit", seen.append)
    assert market.dispatch() == 3
    assert [e.type for e in seen] == ["UserCreated"] * 3
    seller = people[0]
    market.create_ticket(seller, "Seat", 100)
    stats = market.tick()  # the tick delivers too
    assert stats.events_delivered == 1
    assert [e.seq for e in seen] == [1, 2, 3, 4]
    assert market.subscriber_cursor("audit") == 4
    assert market.dispatch() == 0


def test_callback_runs_with_the_gil_on_the_dispatching_thread(market, people):
    calls = []

    def callback(event):
        # Anything needing the GIL: allocation, attribute access, imports.
        import json  # noqa: F401

        calls.append((threading.get_ident(), event.seq, [x * 2 for x in range(100)][-1]))

    market.subscribe("gil", callback)
    done = threading.Event()
    delivered = []

    def worker():
        delivered.append(market.dispatch())
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert done.is_set()
    assert delivered == [3]
    assert {tid for tid, _, _ in calls} == {t.ident}
    assert [seq for _, seq, _ in calls] == [1, 2, 3]


def test_exception_in_callback_is_reported_and_the_event_retried(market, people, monkeypatch):
    reports = []
    monkeypatch.setattr(sys, "unraisablehook", reports.append)
    seen = []
    failed_once = set()

    def flaky(event):
        if event.seq == 2 and event.seq not in failed_once:
            failed_once.add(event.seq)
            raise RuntimeError("mail server down")
        seen.append(event.seq)

    market.subscribe("mailer", flaky)
    assert market.dispatch() == 1  # event 1 acknowledged, event 2 failed
    assert seen == [1]
    assert len(reports) == 1
    report = reports[0]
    assert isinstance(report.exc_value, RuntimeError)
    assert "mailer" in repr(report.object)
    assert market.subscriber_cursor("mailer") == 1

    stats = market.tick()  # retried from event 2, never skipped
    assert stats.events_delivered == 2
    assert seen == [1, 2, 3]
    assert len(reports) == 1


def test_failing_subscriber_counts_as_a_tick_failure(market, people, monkeypatch):
    monkeypatch.setattr(sys, "unraisablehook", lambda report: None)

    def broken(event):
        raise ValueError("always")

    market.subscribe("broken", broken)
    stats = market.tick()
    assert stats.subscriber_failures == 1 and stats.events_delivered == 0
    assert market.subscriber_cursor("broken") == 0


def test_callback_may_call_back_into_the_market(market, people):
    seller = people[0]
    titles = []

    def on_event(event):
        if event.type == "TicketCreated":
            titles.append(market.ticket(event.aggregate_id).title)

    market.subscribe("reentrant", on_event)
    market.create_ticket(seller, "Gallery", 100)
    market.dispatch()
    assert titles == ["Gallery"]


def test_duplicate_name_is_already_exists(market):
    market.subscribe("one", lambda e: None)
    with pytest.raises(tb.AlreadyExists):
        market.subscribe("one", lambda e: None)
    with pytest.raises(TypeError):
        market.subscribe("two", "not callable")  # type: ignore[arg-type]


def test_unsubscribe_and_close_release_the_callback(clock):
    class Sink:
        def __call__(self, event):
            pass

    market = tb.Market(clock=clock, password_cost="min")
    a, b = Sink(), Sink()
    ref_a, ref_b = weakref.ref(a), weakref.ref(b)
    market.subscribe("a", a)
    market.subscribe("b", b)
    del a, b
    gc.collect()
    assert ref_a() is not None and ref_b() is not None  # the market holds them
    market.unsubscribe("a")
    gc.collect()
    assert ref_a() is None and ref_b() is not None
    with pytest.raises(tb.NotFound):
        market.unsubscribe("a")
    market.close()
    gc.collect()
    assert ref_b() is None


def test_durable_cursor_survives_reopening(tmp_path, clock):
    path = tmp_path / "market.db"
    with tb.Market(path, clock=clock, password_cost="min") as market:
        market.signup("a@example.com", "password one")
        seen = []
        market.subscribe("feed", lambda e: seen.append(e.seq))
        market.dispatch()
        assert seen == [1]
    with tb.Market(path, clock=clock, password_cost="min") as market:
        market.signup("b@example.com", "password two")
        seen = []
        market.subscribe("feed", lambda e: seen.append(e.seq))
        market.dispatch()
        assert seen == [2]


def test_a_callback_may_unsubscribe_itself_even_when_it_then_raises(market, people, monkeypatch):
    reports = []
    monkeypatch.setattr(sys, "unraisablehook", reports.append)
    seen = []

    def once(event):
        seen.append(event.seq)
        market.unsubscribe("once")  # frees the subscription while it runs
        raise RuntimeError("after unsubscribing")

    market.subscribe("once", once)
    assert market.dispatch() == 0
    assert seen == [1] and len(reports) == 1
    assert market.dispatch() == 0 and seen == [1]
    market.subscribe("once", lambda e: seen.append(e.seq))  # the name is free again; resumes at 1
    market.dispatch()
    assert seen == [1, 1, 2, 3]
