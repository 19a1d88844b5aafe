"""Exceptions: one class per libticketyboo status, all under :class:`Error`.

The native module raises them through :func:`from_native`, with the detail
the library recorded for the failing call (``tb_last_error()``): the status,
its stable name, the message and, for validation failures, the field.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional, Tuple, Type, Union

__all__ = [
    "Status",
    "Error",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "Unauthenticated",
    "Forbidden",
    "TicketLocked",
    "Conflict",
    "Expired",
    "WrongState",
    "PaymentDeclined",
    "ProviderUnavailable",
    "StorageError",
    "OutOfMemory",
    "Busy",
    "VersionMismatch",
    "InvalidSignature",
    "InternalError",
    "error_class",
]


class Status(enum.IntEnum):
    """libticketyboo's ``tb_status`` codes (0 is success, errors are negative)."""

    OK = 0
    EINVAL = -1
    ENOTFOUND = -2
    EEXISTS = -3
    EUNAUTH = -4
    EFORBIDDEN = -5
    ELOCKED = -6
    ECONFLICT = -7
    EEXPIRED = -8
    ESTATE = -9
    EDECLINED = -10
    EPROVIDER = -11
    ESTORAGE = -12
    ENOMEM = -13
    EBUSY = -14
    EVERSION = -15
    ESIGNATURE = -16
    EINTERNAL = -17


class Error(Exception):
    """Base class of every error libticketyboo reports.

    Attributes:
        status: the library status (a :class:`Status`, or a plain int for a
            code newer than this package).
        code: its stable name, e.g. ``"ELOCKED"``.
        message: the human-readable detail (never contains a secret).
        field: the offending input for validation failures (``"title"``,
            ``"price"``, ``"email"``...), else ``None``.
    """

    default_status: Union[Status, int] = Status.EINTERNAL

    def __init__(
        self,
        message: str,
        *,
        status: Union[Status, int, None] = None,
        code: Optional[str] = None,
        field: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status: Union[Status, int] = self.default_status if status is None else status
        self.code: str = code if code is not None else _status_name(self.status)
        self.field = field

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = f", field={self.field!r}" if self.field is not None else ""
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}{extra})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, int(self.status), self.code, self.field))


def _status_name(status: Union[Status, int]) -> str:
    try:
        return Status(status).name
    except ValueError:
        return f"E{int(status)}"


def _rebuild(cls: Type[Error], message: str, status: int, code: str, field: Optional[str]) -> Error:
    return cls(message, status=_as_status(status), code=code, field=field)


def _as_status(status: int) -> Union[Status, int]:
    try:
        return Status(status)
    except ValueError:
        return status


class InvalidArgument(Error, ValueError):
    """A validation failure; ``field`` names the input (TB_EINVAL)."""

    default_status = Status.EINVAL


class NotFound(Error, LookupError):
    """No such user, ticket, order, charge or session (TB_ENOTFOUND)."""

    default_status = Status.ENOTFOUND


class AlreadyExists(Error):
    """Already exists, e.g. the email is in use (TB_EEXISTS)."""

    default_status = Status.EEXISTS


class Unauthenticated(Error):
    """Bad credentials; unknown, revoked or expired session (TB_EUNAUTH)."""

    default_status = Status.EUNAUTH


class Forbidden(Error):
    """The record belongs to someone else (TB_EFORBIDDEN)."""

    default_status = Status.EFORBIDDEN


class TicketLocked(Error):
    """The ticket is locked by a live order (TB_ELOCKED)."""

    default_status = Status.ELOCKED


class Conflict(Error):
    """The expected version is stale (TB_ECONFLICT)."""

    default_status = Status.ECONFLICT


class Expired(Error):
    """The order's lock window has passed (TB_EEXPIRED)."""

    default_status = Status.EEXPIRED


class WrongState(Error):
    """Not allowed in the record's current state (TB_ESTATE)."""

    default_status = Status.ESTATE


class PaymentDeclined(Error):
    """The payment provider declined the payment (TB_EDECLINED)."""

    default_status = Status.EDECLINED


class ProviderUnavailable(Error):
    """The payment provider is unavailable or refused the request (TB_EPROVIDER)."""

    default_status = Status.EPROVIDER


class StorageError(Error):
    """The storage adapter failed (TB_ESTORAGE)."""

    default_status = Status.ESTORAGE


class OutOfMemory(Error):
    """Out of memory (TB_ENOMEM)."""

    default_status = Status.ENOMEM


class Busy(Error):
    """Storage busy; the operation may be retried (TB_EBUSY)."""

    default_status = Status.EBUSY


class VersionMismatch(Error):
    """Unknown version of an options struct or vtable (TB_EVERSION)."""

    default_status = Status.EVERSION


class InvalidSignature(Error):
    """A webhook signature did not verify (TB_ESIGNATURE)."""

    default_status = Status.ESIGNATURE


class InternalError(Error):
    """A bug in libticketyboo (TB_EINTERNAL)."""

    default_status = Status.EINTERNAL


_CLASSES: Dict[int, Type[Error]] = {
    int(cls.default_status): cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        Unauthenticated,
        Forbidden,
        TicketLocked,
        Conflict,
        Expired,
        WrongState,
        PaymentDeclined,
        ProviderUnavailable,
        StorageError,
        OutOfMemory,
        Busy,
        VersionMismatch,
        InvalidSignature,
        InternalError,
    )
}


def error_class(status: int) -> Type[Error]:
    """The exception class for a status; :class:`Error` for an unknown one."""
    return _CLASSES.get(int(status), Error)


def from_native(status: int, code: str, message: str, field: Optional[str]) -> Error:
    """Build the exception for a failed call (used by the native module)."""
    return error_class(status)(message, status=_as_status(status), code=code, field=field)
