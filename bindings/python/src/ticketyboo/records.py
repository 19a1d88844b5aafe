"""Records: immutable snapshots of users, sessions, tickets, orders, charges
and events, copied out of the library's records when they are read.

Every record has attributes, ``to_dict()`` (plain JSON-ready values) and
``to_json()``.  Times are milliseconds since the Unix epoch (``*_ms``), money
is an integer count of minor units plus an ISO 4217 code.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Callable, ClassVar, Dict, Optional, Type, TypeVar

__all__ = [
    "TicketStatus",
    "OrderStatus",
    "ChargeStatus",
    "User",
    "Session",
    "Ticket",
    "Order",
    "Charge",
    "Event",
    "TickStats",
    "FakeStats",
]


class TicketStatus(str, enum.Enum):
    LISTED = "listed"
    UNLISTED = "unlisted"


class OrderStatus(str, enum.Enum):
    CREATED = "created"
    AWAITING_PAYMENT = "awaiting_payment"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


class ChargeStatus(str, enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


R = TypeVar("R", bound="_Record")


class _Record:
    """to_dict()/to_json() for the dataclasses below, and the copy from a
    native record: each field is read from the attribute of the same name
    unless ``_native`` says how."""

    __slots__ = ()
    _native: ClassVar[Dict[str, Callable[[Any], Any]]] = {}

    @classmethod
    def _from_native(cls: Type[R], raw: Any) -> R:
        how = cls._native
        return cls(*[how[f.name](raw) if f.name in how else getattr(raw, f.name)
                     for f in dataclasses.fields(cls)])  # type: ignore[arg-type]

    def to_dict(self) -> Dict[str, Any]:
        """The fields as plain Python values (enums as their strings)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict(), **kwargs)``."""
        return json.dumps(self.to_dict(), **kwargs)


@dataclasses.dataclass(frozen=True)
class User(_Record):
    id: str
    email: str
    version: int
    created_at_ms: int


@dataclasses.dataclass(frozen=True)
class Session(_Record):
    """A signed-in session.  ``token`` is the only copy there is: keep it
    secret (it is left out of ``repr()``)."""

    token: str = dataclasses.field(repr=False)
    user_id: str
    expires_at_ms: int


@dataclasses.dataclass(frozen=True)
class Ticket(_Record):
    id: str
    title: str
    price_minor: int
    currency: str
    owner_id: str
    order_id: Optional[str]
    """The live order that locks it, or None (as of the read)."""
    locked: bool
    locked_until_ms: int
    """When the lock lapses, or 0 when unlocked."""
    status: TicketStatus
    version: int
    created_at_ms: int

    _native = {
        "locked": lambda raw: bool(raw.locked),
        "status": lambda raw: TicketStatus(raw.status_name),
    }


@dataclasses.dataclass(frozen=True)
class Order(_Record):
    id: str
    ticket_id: str
    buyer_id: str
    seller_id: str
    status: OrderStatus
    """The effective status as of the read (a lapsed order reads as expired)."""
    expires_at_ms: int
    price_minor: int
    currency: str
    version: int
    created_at_ms: int

    _native = {"status": lambda raw: OrderStatus(raw.status_name)}

    @property
    def live(self) -> bool:
        """True while the order holds its ticket's lock."""
        return self.status in (OrderStatus.CREATED, OrderStatus.AWAITING_PAYMENT)


@dataclasses.dataclass(frozen=True)
class Charge(_Record):
    id: str
    order_id: str
    status: ChargeStatus
    amount_minor: int
    currency: str
    provider: str
    provider_charge_id: Optional[str]
    provider_refund_id: Optional[str]
    idempotency_key: str
    failure_code: Optional[str]
    decline_code: Optional[str]
    failure_message: Optional[str]
    refund_reason: Optional[str]
    attempts: int
    version: int
    created_at_ms: int

    _native = {"status": lambda raw: ChargeStatus(raw.status_name)}


@dataclasses.dataclass(frozen=True, eq=True)
class Event(_Record):
    """One entry of the event outbox."""

    seq: int
    """Strictly increasing, gap-free in commit order."""
    type: str
    """"UserCreated", "OrderExpired", ..."""
    subject: str
    """"user:created", "order:expired", ..."""
    aggregate_id: str
    aggregate_version: int
    occurred_at_ms: int
    data: Dict[str, Any] = dataclasses.field(hash=False, compare=False)
    """The payload (a JSON object, without secrets)."""

    _native = {
        "type": lambda raw: raw.name,
        "data": lambda raw: json.loads(raw.payload) if raw.payload else {},
    }


@dataclasses.dataclass(frozen=True)
class TickStats(_Record):
    """What one ``Market.tick()`` did."""

    orders_expired: int
    payments_retried: int
    payments_resolved: int
    refunds_issued: int
    events_delivered: int
    subscriber_failures: int


@dataclasses.dataclass(frozen=True)
class FakeStats(_Record):
    """Counters of a :class:`~ticketyboo.FakePayments` provider."""

    calls: int
    charges: int
    refunds: int
    charged_minor: int
    """Money taken minus money returned."""

