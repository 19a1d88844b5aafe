"""ticketyboo: Python binding of libticketyboo, an embeddable ticket-resale
marketplace (users, listings, orders that lock a ticket and expire,
payments through a pluggable provider, an event outbox, on SQLite).

    import ticketyboo

    with ticketyboo.Market(payments=ticketyboo.FakePayments()) as market:
        seller, _ = market.signup("seller@example.com", "correct horse")
        ticket = market.create_ticket(seller, "Front row", 12_50, "EUR")

The generated low-level module is :mod:`ticketyboo.core` (the C API with the
``tb_`` prefix dropped); everything here is a thin layer over it.
"""

from . import core
from .errors import (
    AlreadyExists,
    Busy,
    Conflict,
    Error,
    Expired,
    Forbidden,
    InternalError,
    InvalidArgument,
    InvalidSignature,
    NotFound,
    OutOfMemory,
    PaymentDeclined,
    ProviderUnavailable,
    Status,
    StorageError,
    TicketLocked,
    Unauthenticated,
    VersionMismatch,
    WrongState,
    error_class,
)
from .market import FakePayments, ManualClock, Market, StripePayments
from .records import (
    Charge,
    ChargeStatus,
    Event,
    FakeStats,
    Order,
    OrderStatus,
    Session,
    Ticket,
    TicketStatus,
    TickStats,
    User,
)

__version__ = "0.1.0"

__all__ = [
    "Market",
    "ManualClock",
    "FakePayments",
    "StripePayments",
    "User",
    "Session",
    "Ticket",
    "TicketStatus",
    "Order",
    "OrderStatus",
    "Charge",
    "ChargeStatus",
    "Event",
    "TickStats",
    "FakeStats",
    "library_version",
    "parse_money",
    "format_money",
    "currency_exponent",
    # errors (listed, not spliced in: type checkers read __all__ statically)
    "AlreadyExists",
    "Busy",
    "Conflict",
    "Error",
    "Expired",
    "Forbidden",
    "InternalError",
    "InvalidArgument",
    "InvalidSignature",
    "NotFound",
    "OutOfMemory",
    "PaymentDeclined",
    "ProviderUnavailable",
    "Status",
    "StorageError",
    "TicketLocked",
    "Unauthenticated",
    "VersionMismatch",
    "WrongState",
    "error_class",
]


def library_version() -> str:
    """The version of the libticketyboo this package was built with."""
    return core.version()


def parse_money(amount: str, currency: str) -> int:
    """Exact decimal text in major units ("19.99") to minor units (1999).

    Raises InvalidArgument (field "price") for anything that is not a plain
    non-negative decimal with at most the currency's number of decimals.
    """
    return core.money_parse(amount, currency)


def format_money(minor: int, currency: str) -> str:
    """Minor units to decimal text in major units (1999, "USD" -> "19.99")."""
    return core.money_format(int(minor), currency)


def currency_exponent(currency: str) -> "int | None":
    """Decimal places of an ISO 4217 currency (2 for USD, 0 for JPY), or None."""
    exponent = core.currency_exponent(currency)
    return None if exponent < 0 else exponent
