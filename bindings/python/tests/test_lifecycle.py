"""Opening, closing, and leaving the interpreter with markets still open."""

import subprocess
import sys
import textwrap

import pytest

import ticketyboo as tb


def test_context_manager_closes(clock):
    with tb.Market(clock=clock) as market:
        assert not market.closed
    assert market.closed
    with pytest.raises(tb.InvalidArgument):
        market.signup("a@example.com", "password one")


def test_market_outlives_its_python_references_only_while_in_use(clock):
    market = tb.Market(clock=clock)
    assert "memory" in repr(market)
    del market  # closed by its destructor, no crash


def test_low_level_close_is_idempotent(clock):
    raw = tb.core.market_open(":memory:", 0, None, None, 1, 0, 0, 0, 0, None, 0)
    tb.core.market_close(raw)
    tb.core.market_close(raw)  # the proxy let go of the pointer: a no-op
    with pytest.raises(tb.InvalidArgument):
        tb.core.market_tick(raw)


EXIT_SCRIPT = textwrap.dedent(
    """
    import threading, ticketyboo as tb
    clock = tb.ManualClock()
    market = tb.Market(clock=clock, payments=tb.FakePayments(), password_cost="min")
    market.signup("a@example.com", "password one")
    market.subscribe("s", lambda e: None)
    def spin():
        while True:
            try:
                market.tick()
            except tb.InvalidArgument:  # atexit closed the market
                return
            clock.advance(1)
    for _ in range(2):
        threading.Thread(target=spin, daemon=True).start()
    # leave without closing: atexit must close the market first
    """
)


def test_interpreter_exit_with_live_markets_and_ticking_threads_is_clean():
    for _ in range(10):
        proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and "Fatal" not in proc.stderr, proc.stderr
