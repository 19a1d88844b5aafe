"""Every status maps to its exception class, with status, code, message, field."""

import pickle

import pytest

import ticketyboo as tb
from ticketyboo.errors import from_native

CLASSES = {
    tb.Status.EINVAL: tb.InvalidArgument,
    tb.Status.ENOTFOUND: tb.NotFound,
    tb.Status.EEXISTS: tb.AlreadyExists,
    tb.Status.EUNAUTH: tb.Unauthenticated,
    tb.Status.EFORBIDDEN: tb.Forbidden,
    tb.Status.ELOCKED: tb.TicketLocked,
    tb.Status.ECONFLICT: tb.Conflict,
    tb.Status.EEXPIRED: tb.Expired,
    tb.Status.ESTATE: tb.WrongState,
    tb.Status.EDECLINED: tb.PaymentDeclined,
    tb.Status.EPROVIDER: tb.ProviderUnavailable,
    tb.Status.ESTORAGE: tb.StorageError,
    tb.Status.ENOMEM: tb.OutOfMemory,
    tb.Status.EBUSY: tb.Busy,
    tb.Status.EVERSION: tb.VersionMismatch,
    tb.Status.ESIGNATURE: tb.InvalidSignature,
    tb.Status.EINTERNAL: tb.InternalError,
}


def test_status_enum_matches_the_library():
    # A status appended to the C enum must get a class here too.
    assert len(tb.Status) == tb.core.STATUS_COUNT
    for status in tb.Status:
        assert int(getattr(tb.core, status.name)) == int(status)
        assert tb.core.status_name(int(status)) == status.name


@pytest.mark.parametrize("status", [s for s in tb.Status if s != tb.Status.OK], ids=lambda s: s.name)
def test_every_status_has_its_class(status):
    cls = CLASSES[status]
    assert tb.error_class(status) is cls
    assert issubclass(cls, tb.Error)
    err = from_native(int(status), status.name, "boom", "field" if status == tb.Status.EINVAL else None)
    assert type(err) is cls
    assert (err.status, err.code, err.message, str(err)) == (status, status.name, "boom", "boom")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and again.code == status.name and again.field == err.field


def test_unknown_status_falls_back_to_the_base_class():
    err = from_native(-99, "E99", "from the future", None)
    assert type(err) is tb.Error and err.status == -99 and err.code == "E99"


def test_python_friendly_bases():
    assert issubclass(tb.InvalidArgument, ValueError)
    assert issubclass(tb.NotFound, LookupError)


# Each status the library can be driven to from Python, raised by a real call.


def _raises(cls, fn, *args, code, field=None, **kwargs):
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    err = info.value
    assert type(err) is cls
    assert err.code == code and err.status == tb.Status[code]
    assert err.message and isinstance(err.message, str)
    assert err.field == field
    return err


def test_real_failures_raise_their_classes(market, people, clock):
    seller, buyer, rival = people
    ticket = market.create_ticket(seller, "Upper circle", 3000)

    _raises(tb.InvalidArgument, market.create_ticket, seller, "x" * 201, 100, code="EINVAL", field="title")
    _raises(tb.InvalidArgument, market.create_ticket, seller, "ok", 0, code="EINVAL", field="price")
    _raises(tb.InvalidArgument, market.signup, "not an email", "long enough password", code="EINVAL", field="email")
    _raises(tb.InvalidArgument, market.signup, "short@example.com", "short", code="EINVAL", field="password")
    _raises(tb.NotFound, market.ticket, "00000000-0000-7000-8000-000000000000", code="ENOTFOUND")
    _raises(tb.AlreadyExists, market.signup, "seller@example.com", "another password", code="EEXISTS", field="email")
    _raises(tb.Unauthenticated, market.signin, "seller@example.com", "wrong password", code="EUNAUTH")
    _raises(tb.Unauthenticated, market.user_for_session, "no-such-token", code="EUNAUTH")
    _raises(tb.Forbidden, market.update_ticket, buyer, ticket, title="mine", code="EFORBIDDEN")
    _raises(tb.Forbidden, market.order, seller, ticket, code="EFORBIDDEN")
    _raises(tb.Conflict, market.update_ticket, seller, ticket, title="t", expected_version=7, code="ECONFLICT", field="version")

    order = market.order(buyer, ticket)
    _raises(tb.TicketLocked, market.order, rival, ticket, code="ELOCKED")
    market.cancel(buyer, order)
    _raises(tb.WrongState, market.pay, buyer, order, "tok_visa", code="ESTATE")

    order = market.order(buyer, ticket)
    clock.advance(minutes=16)
    _raises(tb.Expired, market.pay, buyer, order, "tok_visa", code="EEXPIRED")

    order = market.order(rival, ticket)
    _raises(tb.PaymentDeclined, market.pay, rival, order, "tok_chargeDeclined", code="EDECLINED")
    order = market.order(rival, ticket)
    _raises(tb.ProviderUnavailable, market.pay, rival, order, "tok_unknown", code="EPROVIDER")


def test_paying_without_a_provider_is_provider_unavailable(clock):
    with tb.Market(clock=clock, password_cost="min") as market:
        seller, _ = market.signup("s@example.com", "password one")
        buyer, _ = market.signup("b@example.com", "password two")
        order = market.order(buyer, market.create_ticket(seller, "Seat", 100))
        _raises(tb.ProviderUnavailable, market.pay, buyer, order, "tok_visa", code="EPROVIDER")


def test_unopenable_database_is_a_storage_error(tmp_path):
    _raises(tb.StorageError, tb.Market, tmp_path / "no" / "such" / "dir" / "m.db", code="ESTORAGE")


def test_bad_options_name_their_field():
    _raises(tb.InvalidArgument, tb.Market, default_currency="EURO", code="EINVAL", field="default_currency")
    err = _raises(tb.InvalidArgument, tb.Market, password_cost="extreme", code="EINVAL", field="password_cost")
    assert "min" in err.message


def test_closed_market_raises_invalid_argument(clock):
    market = tb.Market(clock=clock)
    market.close()
    market.close()  # idempotent
    assert market.closed
    _raises(tb.InvalidArgument, market.tick, code="EINVAL", field="market")


def test_wrong_argument_types_are_type_errors(market):
    with pytest.raises(TypeError):
        market.ticket(42)  # type: ignore[arg-type]
