import pytest

import ticketyboo as tb

START_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def clock():
    return tb.ManualClock(START_MS)


@pytest.fixture
def payments():
    return tb.FakePayments()


@pytest.fixture
def market(clock, payments):
    with tb.Market(clock=clock, payments=payments, password_cost="min", lock_minutes=15) as m:
        yield m


@pytest.fixture
def people(market):
    """A seller, a buyer and a second buyer, signed up."""
    seller, _ = market.signup("seller@example.com", "seller-password")
    buyer, _ = market.signup("buyer@example.com", "buyer-password")
    rival, _ = market.signup("rival@example.com", "rival-password")
    return seller, buyer, rival
