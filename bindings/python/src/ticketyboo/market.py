"""The marketplace: :class:`Market`, plus :class:`ManualClock` and
:class:`FakePayments` for tests and demos.

A thin layer over the generated module :mod:`ticketyboo.core`: it turns
arguments into what the C API takes, and native records into the immutable
dataclasses of :mod:`ticketyboo.records`.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from . import core
from .errors import InvalidArgument
from .records import Charge, Event, FakeStats, Order, Session, Ticket, TickStats, User

__all__ = ["Market", "ManualClock", "FakePayments", "StripePayments", "PASSWORD_COSTS", "FAKE_OUTCOMES"]

PathLike = Union[str, "os.PathLike[str]"]
UserRef = Union[str, User, Session]
TicketRef = Union[str, Ticket]
OrderRef = Union[str, Order]
SessionRef = Union[str, Session]

PASSWORD_COSTS = {
    "default": core.PASSWORD_COST_DEFAULT,
    "min": core.PASSWORD_COST_MIN,
    "interactive": core.PASSWORD_COST_INTERACTIVE,
    "moderate": core.PASSWORD_COST_MODERATE,
}
_LATE_PAYMENT = {
    "refund": core.LATE_PAYMENT_REFUND,
    "honour_if_available": core.LATE_PAYMENT_HONOUR_IF_AVAILABLE,
}
_SYNC = {"default": core.SYNC_DEFAULT, "normal": core.SYNC_NORMAL, "full": core.SYNC_FULL, "off": core.SYNC_OFF}
FAKE_OUTCOMES = {
    "succeed": core.FAKE_SUCCEED,
    "decline": core.FAKE_DECLINE,
    "timeout": core.FAKE_TIMEOUT,
    "timeout_after_charge": core.FAKE_TIMEOUT_AFTER_CHARGE,
    "error": core.FAKE_ERROR,
}
_PAYMENT_EVENT_TYPES = {
    "succeeded": core.PAYMENT_EVENT_SUCCEEDED,
    "failed": core.PAYMENT_EVENT_FAILED,
    "refunded": core.PAYMENT_EVENT_REFUNDED,
}


def _choice(kind: str, table: Dict[str, int], value: str) -> int:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise InvalidArgument(
            f"{kind} must be one of {', '.join(map(repr, table))}, not {value!r}", field=kind
        ) from None


def _user_id(user: UserRef) -> str:
    if isinstance(user, Session):
        return user.user_id
    return user if isinstance(user, str) else user.id


def _ticket_id(ticket: TicketRef) -> str:
    return ticket if isinstance(ticket, str) else ticket.id


def _order_id(order: OrderRef) -> str:
    return order if isinstance(order, str) else order.id


def _token(session: SessionRef) -> str:
    return session if isinstance(session, str) else session.token


# ---------------------------------------------------------------------------
# Test and demo helpers
# ---------------------------------------------------------------------------


class ManualClock:
    """A clock that only moves when told to, for stepping through lock expiry.

    Pass it as ``Market(clock=...)``; the market reads it on every call.  It
    may be read and stepped from any thread.
    """

    def __init__(self, start_ms: Optional[int] = None) -> None:
        """Start at ``start_ms`` (ms since the epoch), or at the real time now."""
        if start_ms is None:
            start_ms = core.clock_real_now_ms()
        self._raw = core.clock_manual_new(int(start_ms))

    @property
    def now_ms(self) -> int:
        return core.clock_manual_now(self._raw)

    def set(self, now_ms: int) -> None:
        """Set the time (moving backwards is allowed)."""
        core.clock_manual_set(self._raw, int(now_ms))

    def advance(self, ms: int = 0, *, seconds: float = 0, minutes: float = 0, hours: float = 0) -> int:
        """Move the time forward (or back, with a negative delta); returns the new time."""
        delta = int(ms) + round((seconds + 60 * minutes + 3600 * hours) * 1000)
        core.clock_manual_advance(self._raw, delta)
        return self.now_ms

    def __repr__(self) -> str:
        return f"ManualClock(now_ms={self.now_ms})"


class FakePayments:
    """The library's deterministic in-process payment provider.

    Tokens mirror Stripe's test tokens: ``"tok_visa"`` succeeds,
    ``"tok_chargeDeclined"`` is declined, ``"tok_chargeDeclinedInsufficientFunds"``
    is declined with ``insufficient_funds``, ``"tok_timeout"`` takes the money
    but loses the answer, ``"tok_timeoutNoCharge"`` answers unknown without
    charging; anything else is an error.  :meth:`script` overrides that.
    """

    def __init__(self) -> None:
        self._raw = core.payment_fake_new()

    name = "fake"

    def script(self, token: str, outcome: str) -> None:
        """Queue ``outcome`` for the next call carrying ``token``.

        ``outcome``: ``"succeed"``, ``"decline"``, ``"timeout"`` (unknown, no
        money taken), ``"timeout_after_charge"`` (unknown, money taken) or
        ``"error"``.  Queued outcomes are used first-in first-out.
        """
        core.payment_fake_script(self._raw, token, _choice("outcome", FAKE_OUTCOMES, outcome))

    @property
    def stats(self) -> FakeStats:
        """Calls made, charges and refunds that moved money, net amount."""
        return FakeStats._from_native(core.payment_fake_stats(self._raw))

    def __repr__(self) -> str:
        return f"FakePayments({self.stats})"


_DEFAULT: Any = object()


class StripePayments:
    """Stripe, through its PaymentIntents and Refunds APIs (libcurl, TLS).

    A call to Stripe blocks its thread (retries with backoff included) and
    releases the GIL meanwhile; every request carries the charge's
    idempotency key, so a retry never charges twice.  Secrets are kept in
    memory the provider owns and wiped when it is freed.

    Args:
        secret_key: "sk_live_...", "sk_test_..." or "rk_...".
        base_url: default Stripe's API; plain http only to a loopback host (tests).
        api_version: the Stripe-Version header (default the pinned one; None: none).
        webhook_secret: "whsec_..." to accept webhooks (:meth:`Market.stripe_webhook`).
    """

    name = "stripe"

    def __init__(
        self,
        secret_key: str,
        *,
        base_url: Optional[str] = None,
        connect_timeout_ms: int = core.STRIPE_DEFAULT_CONNECT_TIMEOUT_MS,
        timeout_ms: int = core.STRIPE_DEFAULT_TIMEOUT_MS,
        max_retries: int = core.STRIPE_DEFAULT_MAX_RETRIES,
        backoff_base_ms: int = core.STRIPE_DEFAULT_BACKOFF_BASE_MS,
        backoff_cap_ms: int = core.STRIPE_DEFAULT_BACKOFF_CAP_MS,
        api_version: Optional[str] = _DEFAULT,
        webhook_secret: Optional[str] = None,
        webhook_tolerance_s: int = 0,
    ) -> None:
        self._raw = core.payment_stripe_new(
            secret_key,
            base_url,
            int(connect_timeout_ms),
            int(timeout_ms),
            int(max_retries),
            int(backoff_base_ms),
            int(backoff_cap_ms),
            core.STRIPE_DEFAULT_API_VERSION if api_version is _DEFAULT else api_version,
            webhook_secret,
            int(webhook_tolerance_s),
        )

    def __repr__(self) -> str:
        return "StripePayments()"


Provider = Union[FakePayments, StripePayments]


# ---------------------------------------------------------------------------
# Market
# ---------------------------------------------------------------------------

_live_markets: "weakref.WeakSet[Market]" = weakref.WeakSet()
# Reentrant: a Market.__del__ run by the garbage collector may land inside a
# block that already holds it.
_live_lock = threading.RLock()


@atexit.register
def _close_live_markets() -> None:
    # Close before the interpreter finalizes, so no library call can reach a
    # subscriber trampoline (PyGILState_Ensure) during finalization.
    with _live_lock:
        markets = list(_live_markets)
    for market in markets:
        market.close()


class _Subscriber:
    """What the native trampoline calls: converts the event, calls the user's
    function.  Its repr names both in an unraisable-exception report."""

    __slots__ = ("name", "callback")

    def __init__(self, name: str, callback: Callable[[Event], Any]) -> None:
        self.name = name
        self.callback = callback

    def __call__(self, raw: Any) -> None:
        self.callback(Event._from_native(raw))

    def __repr__(self) -> str:
        return f"<ticketyboo subscriber {self.name!r} calling {self.callback!r}>"


class Market:
    """One marketplace: users, listings, orders, payments and the event outbox.

    Usable from any number of threads at once; blocking calls (password
    hashing, the database, a payment provider) release the GIL.  Use it as a
    context manager, or call :meth:`close`; markets still open at interpreter
    exit are closed by an ``atexit`` hook.

    Args:
        path: SQLite file, or ``":memory:"`` (the default).
        lock_minutes / lock_ms: how long an order locks its ticket (default 15 min).
        clock: a :class:`ManualClock`, or None for the real clock.
        payments: a :class:`FakePayments` or :class:`StripePayments`, or None:
            then paying fails with :class:`~ticketyboo.ProviderUnavailable`.
        password_cost: argon2id cost, ``"default"``, ``"min"`` (tests only),
            ``"interactive"`` or ``"moderate"``.
        session_ttl_ms, payment_grace_ms, payment_retry_ms: durations (0 = default).
        late_payment: ``"refund"`` (default) or ``"honour_if_available"``.
        sync: SQLite durability, ``"default"``, ``"normal"``, ``"full"``, ``"off"``.
        default_currency: ISO 4217 code for tickets that name none ("USD").
    """

    def __init__(
        self,
        path: PathLike = ":memory:",
        *,
        lock_minutes: Optional[float] = None,
        lock_ms: Optional[int] = None,
        clock: Optional[ManualClock] = None,
        payments: Optional[Provider] = None,
        password_cost: str = "default",
        session_ttl_ms: Optional[int] = None,
        late_payment: str = "refund",
        payment_grace_ms: Optional[int] = None,
        sync: str = "default",
        default_currency: Optional[str] = None,
        payment_retry_ms: Optional[int] = None,
    ) -> None:
        self._raw: Any = None
        if lock_minutes is not None and lock_ms is not None:
            raise TypeError("give lock_minutes or lock_ms, not both")
        lock = int(lock_ms) if lock_ms is not None else 0
        if lock_minutes is not None:
            lock = round(lock_minutes * 60_000)
            if lock <= 0:
                raise InvalidArgument("lock_minutes must be positive", field="lock_minutes")
        self.path = os.fspath(path)
        self.clock = clock
        self.payments = payments
        self._raw = core.market_open(
            self.path,
            lock,
            clock._raw if clock is not None else None,
            payments._raw if payments is not None else None,
            _choice("password_cost", PASSWORD_COSTS, password_cost),
            int(session_ttl_ms or 0),
            _choice("late_payment", _LATE_PAYMENT, late_payment),
            int(payment_grace_ms or 0),
            _choice("sync", _SYNC, sync),
            default_currency,
            int(payment_retry_ms or 0),
        )
        with _live_lock:
            _live_markets.add(self)

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Close the market (idempotent).  Later calls raise InvalidArgument.

        A call still running on another thread keeps the native market alive
        until it returns; the market closes then.
        """
        raw, self._raw = self._raw, None
        del raw  # the last reference: the proxy's destructor closes the market
        with _live_lock:
            _live_markets.discard(self)

    @property
    def closed(self) -> bool:
        return self._raw is None

    def __enter__(self) -> "Market":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_raw", None) is not None:
            self.close()

    def __repr__(self) -> str:
        return f"<ticketyboo.Market {self.path!r}{' closed' if self.closed else ''}>"

    def _m(self) -> Any:
        raw = self._raw
        if raw is None:
            raise InvalidArgument("the market is closed", field="market")
        return raw

    # -- time --------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The market's clock reading (ms since the epoch)."""
        return core.market_now_ms(self._m())

    @property
    def lock_ms(self) -> int:
        """The order lock window, in milliseconds."""
        return core.market_lock_ms(self._m())

    def tick(self) -> TickStats:
        """Do what is due: expire orders, retry unknown payments and refunds,
        refund late payments, deliver events to subscribers."""
        return TickStats._from_native(core.market_tick(self._m()))

    def next_deadline(self) -> Optional[int]:
        """When the next tick has work (ms since the epoch), or None."""
        deadline = core.market_next_deadline(self._m())
        return None if deadline == core.NO_DEADLINE else deadline

    def checkpoint(self) -> None:
        """Run a passive WAL checkpoint now."""
        core.market_checkpoint(self._m())

    # -- users -------------------------------------------------------------

    def signup(self, email: str, password: str) -> Tuple[User, Session]:
        """Create an account; returns the user and a signed-in session."""
        user, session = core.user_signup(self._m(), email, password)
        return User._from_native(user), Session._from_native(session)

    def signin(self, email: str, password: str) -> Session:
        """Verify the password and start a session (Unauthenticated otherwise)."""
        return Session._from_native(core.user_signin(self._m(), email, password))

    def signout(self, session: SessionRef) -> None:
        """Revoke a session (idempotent)."""
        core.user_signout(self._m(), _token(session))

    def user_for_session(self, session: SessionRef) -> User:
        """The user a session token belongs to (Unauthenticated if none)."""
        return User._from_native(core.user_get_by_session(self._m(), _token(session)))

    def user(self, user_id: str) -> User:
        return User._from_native(core.user_get(self._m(), user_id))

    def update_email(self, user: UserRef, current_password: str, new_email: str) -> User:
        return User._from_native(
            core.user_update_email(self._m(), _user_id(user), current_password, new_email)
        )

    def update_password(self, user: UserRef, current_password: str, new_password: str) -> User:
        """Change the password; every other session of the user is revoked."""
        return User._from_native(
            core.user_update_password(self._m(), _user_id(user), current_password, new_password)
        )

    # -- tickets -----------------------------------------------------------

    def create_ticket(
        self, owner: UserRef, title: str, price_minor: int, currency: Optional[str] = None
    ) -> Ticket:
        """List a ticket for sale (price in minor units; currency defaults to the market's)."""
        return Ticket._from_native(
            core.ticket_create(self._m(), _user_id(owner), title, int(price_minor), currency)
        )

    def ticket(self, ticket_id: str) -> Ticket:
        return Ticket._from_native(core.ticket_get(self._m(), ticket_id))

    def update_ticket(
        self,
        user: UserRef,
        ticket: TicketRef,
        *,
        title: Optional[str] = None,
        price_minor: Optional[int] = None,
        expected_version: Optional[int] = None,
    ) -> Ticket:
        """Change title and/or price.  With ``expected_version`` the update
        fails with Conflict if the ticket changed since that version."""
        return Ticket._from_native(
            core.ticket_update(
                self._m(),
                _user_id(user),
                _ticket_id(ticket),
                title,
                core.keep() if price_minor is None else int(price_minor),
                core.any_version() if expected_version is None else int(expected_version),
            )
        )

    def set_listed(self, user: UserRef, ticket: TicketRef, listed: bool = True) -> Ticket:
        """List (or, with ``listed=False``, withdraw) a ticket the user owns."""
        return Ticket._from_native(
            core.ticket_set_listed(self._m(), _user_id(user), _ticket_id(ticket), 1 if listed else 0)
        )

    def tickets_page(
        self,
        *,
        available_only: bool = False,
        owner: Optional[UserRef] = None,
        title_contains: Optional[str] = None,
        after: Optional[str] = None,
        limit: int = 50,
    ) -> Tuple[List[Ticket], Optional[str]]:
        """One page of tickets, oldest first, and the cursor of the next (or None)."""
        page = core.ticket_list(
            self._m(),
            1 if available_only else 0,
            None if owner is None else _user_id(owner),
            title_contains,
            after,
            int(limit),
        )
        return [Ticket._from_native(page.get(i)) for i in range(page.count)], page.next_cursor

    def tickets(
        self,
        *,
        available_only: bool = False,
        owner: Optional[UserRef] = None,
        title_contains: Optional[str] = None,
        page_size: int = 50,
    ) -> Iterator[Ticket]:
        """Every matching ticket, oldest first, fetched a page at a time."""
        after: Optional[str] = None
        while True:
            items, after = self.tickets_page(
                available_only=available_only,
                owner=owner,
                title_contains=title_contains,
                after=after,
                limit=page_size,
            )
            yield from items
            if after is None:
                return

    # -- orders ------------------------------------------------------------

    def order(self, buyer: UserRef, ticket: TicketRef) -> Order:
        """Order a ticket, locking it for the market's lock window.
        Raises TicketLocked if a live order already holds it."""
        return Order._from_native(core.order_create(self._m(), _user_id(buyer), _ticket_id(ticket)))

    def get_order(self, user: UserRef, order_id: str) -> Order:
        """Fetch one of the user's orders (Forbidden for someone else's)."""
        return Order._from_native(core.order_get(self._m(), _user_id(user), order_id))

    def orders_page(
        self, buyer: UserRef, *, after: Optional[str] = None, limit: int = 50
    ) -> Tuple[List[Order], Optional[str]]:
        page = core.order_list(self._m(), _user_id(buyer), after, int(limit))
        return [Order._from_native(page.get(i)) for i in range(page.count)], page.next_cursor

    def orders(self, buyer: UserRef, *, page_size: int = 50) -> Iterator[Order]:
        """Every order of the buyer, oldest first."""
        after: Optional[str] = None
        while True:
            items, after = self.orders_page(buyer, after=after, limit=page_size)
            yield from items
            if after is None:
                return

    def cancel(self, user: UserRef, order: OrderRef) -> Order:
        """Cancel an order (buyer only), unlocking its ticket."""
        return Order._from_native(core.order_cancel(self._m(), _user_id(user), _order_id(order)))

    # -- payments ----------------------------------------------------------

    def pay(self, user: UserRef, order: OrderRef, token: str) -> Charge:
        """Pay an order with a provider token ("tok_visa").  Returns the
        charge (SUCCEEDED, or PENDING if the provider's answer was lost);
        raises PaymentDeclined, Expired, WrongState, ProviderUnavailable..."""
        return Charge._from_native(core.order_pay(self._m(), _user_id(user), _order_id(order), token))

    def refund(self, seller: UserRef, order: OrderRef, reason: Optional[str] = None) -> Charge:
        """Refund a complete order (seller only); the ticket returns to the seller."""
        return Charge._from_native(
            core.order_refund(self._m(), _user_id(seller), _order_id(order), reason)
        )

    def charge(self, user: UserRef, charge_id: str) -> Charge:
        return Charge._from_native(core.charge_get(self._m(), _user_id(user), charge_id))

    def latest_charge(self, user: UserRef, order: OrderRef) -> Charge:
        """The most recent charge of an order (its buyer's or seller's)."""
        return Charge._from_native(core.charge_get_latest(self._m(), _user_id(user), _order_id(order)))

    def apply_payment_event(
        self,
        type: str,
        event_id: str,
        *,
        charge_id: Optional[str] = None,
        provider_charge_id: Optional[str] = None,
        provider_refund_id: Optional[str] = None,
        failure_code: Optional[str] = None,
        decline_code: Optional[str] = None,
        failure_message: Optional[str] = None,
    ) -> None:
        """Apply a provider's (already verified) notice: ``type`` is
        ``"succeeded"``, ``"failed"`` or ``"refunded"``.  Idempotent."""
        core.market_apply_payment_event(
            self._m(),
            _choice("type", _PAYMENT_EVENT_TYPES, type),
            event_id,
            charge_id,
            provider_charge_id,
            provider_refund_id,
            failure_code,
            decline_code,
            failure_message,
        )

    def stripe_webhook(self, signature_header: str, body: Union[str, bytes]) -> None:
        """Handle one Stripe webhook delivery: verify ``Stripe-Signature``
        against the raw body with the provider's ``webhook_secret``, then
        apply the event (idempotent).  Raises InvalidSignature (answer HTTP
        400), NotFound (no charge of this market matches), InvalidArgument."""
        if not isinstance(self.payments, StripePayments):
            raise InvalidArgument("the market's payments provider is not Stripe", field="payments")
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        core.market_stripe_webhook(self._m(), self.payments._raw, signature_header, body)

    # -- events ------------------------------------------------------------

    def events(self, after: int = 0, *, page_size: int = 100) -> Iterator[Event]:
        """Events with ``seq > after``, oldest first, until the newest."""
        while True:
            page = core.event_read(self._m(), int(after), int(page_size))
            count = page.count
            if count == 0:
                return
            for i in range(count):
                event = Event._from_native(page.get(i))
                after = event.seq
                yield event

    def last_event_seq(self) -> int:
        """Sequence number of the newest event (0 when none)."""
        return core.event_last_seq(self._m())

    def subscribe(self, name: str, callback: Callable[[Event], Any]) -> None:
        """Deliver every event to ``callback(event)`` as the durable subscriber
        ``name``, at least once and in order, when the market ticks or
        :meth:`dispatch` runs (on that thread).  A subscriber seen before
        resumes after the last event it acknowledged.

        If the callback raises, the exception is reported through
        :func:`sys.unraisablehook` and the event is delivered again on a later
        tick or dispatch.  The market keeps the callback until
        :meth:`unsubscribe` or :meth:`close`.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        core.market_subscribe(self._m(), name, _Subscriber(name, callback))

    def unsubscribe(self, name: str) -> None:
        """Stop delivering to ``name`` (its stored cursor is kept)."""
        core.market_unsubscribe(self._m(), name)

    def subscriber_cursor(self, name: str) -> int:
        """The last sequence number ``name`` acknowledged (0 if none)."""
        return core.event_cursor(self._m(), name)

    def dispatch(self) -> int:
        """Deliver pending events to every subscriber now; returns how many
        were acknowledged."""
        return core.event_dispatch(self._m())
