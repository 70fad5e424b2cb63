"""Exceptions raised by django-async-reports, all below ``AsyncReportsError``."""

from __future__ import annotations

import json
import secrets
import socket
import traceback
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework.exceptions import ValidationError

#: Longest error text kept on a report, an execution or a webhook attempt.
MAX_ERROR_LENGTH = 10_000


class AsyncReportsError(Exception):
    """Root of every exception this package raises."""


class AlreadyRegistered(AsyncReportsError, ValueError):
    """A second generator class was registered under a report_type already taken."""


class NotRegistered(AsyncReportsError, LookupError):
    """No generator is registered under the requested report_type."""


class IdempotencyKeyReused(AsyncReportsError, ValueError):
    """An ``Idempotency-Key`` sent again with a different request (the API answers 422)."""


class InvalidGenerator(AsyncReportsError, ImproperlyConfigured):
    """A generator class is missing something it must declare (report_type, columns...)."""


class InvalidReportState(AsyncReportsError, ValueError):
    """The requested transition does not apply to the report's current status."""


class ReportDispatchError(AsyncReportsError, ConnectionError):
    """No longer raised: a report whose task the broker refuses waits, pending.

    Its row records the message (``Report.next_step``) and the sweeper sends
    it once the broker is back. Kept so that hosts' ``except`` clauses import.
    """


class ReportTypeNotAllowed(AsyncReportsError, PermissionError):
    """The user may not run this report type (its generator's ``has_permission`` said no)."""


class PriorityNotAllowed(AsyncReportsError, PermissionError):
    """The user may not ask for this priority (``PRIORITIES_WITHOUT_PERMISSION``)."""


class LimitExceeded(AsyncReportsError):
    """A per-user cap is reached (the API answers 429); ``retry_after`` in seconds, or None."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReportCancelled(AsyncReportsError):
    """Raised inside a running generation when the report was cancelled meanwhile."""


class ReportConfigurationError(AsyncReportsError, ImproperlyConfigured):
    """The ASYNC_REPORTS settings are wrong."""


class ReportError(AsyncReportsError):
    """A report failed for a reason its requester may read: the message is shown as is.

    Raise it from a generator (``rows()``, ``count()``, ``summary()``...) with
    a sentence meant for users, such as ``ReportError("No sales were recorded
    in that period.")``. The report fails at once, without retries. The
    message reaches the API, e-mails and webhooks: never put host names,
    addresses, file paths or secrets in it. Any other exception is shown to
    users as a sentence naming its kind (see :func:`explain`).
    """


def describe(exc: BaseException) -> str:
    """One line saying exactly what went wrong: for logs and admins, never for users.

    A DRF ``ValidationError`` (a generator's parameters refused) reads
    ``Invalid parameters: {"field": ["message"]}``; anything else is
    ``ExceptionType: message``, which may name hosts, addresses or paths.
    Cut to :data:`MAX_ERROR_LENGTH`. :func:`explain` gives what users see.
    """
    if isinstance(exc, ValidationError):
        detail = json.dumps(exc.detail, ensure_ascii=False, default=str)
        text = f"Invalid parameters: {detail}"
    else:
        message = str(exc)
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


# What users read of an error, by kind; the details go to the log and the admin.
DATABASE_UNREACHABLE = "The database could not be reached."
DATABASE_ERROR = "A database error occurred."
SERVICE_UNREACHABLE = "A service the report depends on could not be reached."
STORAGE_ERROR = "The file could not be stored."
INTERNAL_ERROR = "The report could not be generated because of an internal error."

# Exceptions of these top-level packages are told by their package, not imported:
# the broker's and the cache's clients, S3's, and raw database drivers.
_SERVICE_PACKAGES = frozenset({"kombu", "amqp", "redis", "celery", "billiard"})
_STORAGE_PACKAGES = frozenset({"botocore", "boto3", "s3transfer", "storages"})
_DATABASE_PACKAGES = frozenset({"psycopg", "psycopg2"})


@dataclass(frozen=True)
class ErrorText:
    """An error in two versions: what users see, and what admins and logs get.

    ``message`` goes to ``error_message`` / ``execution.error``, the API,
    e-mails and webhooks: words, and a ``reference`` an admin finds in the log
    and in ``detail`` (empty when the message is the user's own input or a
    :class:`ReportError`'s). ``detail`` is the exception's type, message and
    traceback: the admin-only ``error_detail`` fields and the log.
    """

    message: str
    detail: str
    reference: str = ""


def _packages(exc: BaseException) -> set[str]:
    return {cls.__module__.partition(".")[0] for cls in type(exc).__mro__}


def _kind(exc: BaseException) -> str:
    """The sentence a user reads for ``exc``, by the kind of failure it is."""
    packages = _packages(exc)
    if isinstance(exc, (OperationalError, InterfaceError)):
        return DATABASE_UNREACHABLE
    if isinstance(exc, DatabaseError):
        return DATABASE_ERROR
    if packages & _DATABASE_PACKAGES:
        unreachable = type(exc).__name__ in ("OperationalError", "InterfaceError")
        return DATABASE_UNREACHABLE if unreachable else DATABASE_ERROR
    if packages & _SERVICE_PACKAGES:
        return SERVICE_UNREACHABLE
    if packages & _STORAGE_PACKAGES:
        return STORAGE_ERROR
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, socket.herror)):
        return SERVICE_UNREACHABLE
    if isinstance(exc, OSError):
        return STORAGE_ERROR
    return INTERNAL_ERROR


def _detail(exc: BaseException, reference: str) -> str:
    """``Type: message``, then the traceback when there is one, within MAX_ERROR_LENGTH."""
    head = f"Reference: {reference}\n{describe(exc)}" if reference else describe(exc)
    if exc.__traceback__ is None:
        return head[:MAX_ERROR_LENGTH]
    trace = "".join(traceback.format_exception(exc))
    room = MAX_ERROR_LENGTH - len(head) - 2
    return f"{head}\n\n{trace[-room:]}" if room > 0 else head[:MAX_ERROR_LENGTH]


#: The package's refusals of a request, worded for the user who made it.
REFUSALS: tuple[type[Exception], ...] = (
    ReportTypeNotAllowed,
    PriorityNotAllowed,
    LimitExceeded,
)


def explain(exc: BaseException, *, prefix: str = "") -> ErrorText:
    """What users and admins are told of ``exc``: an :class:`ErrorText`.

    Users read words, never hosts, addresses, paths or tracebacks: a
    :class:`ReportError`'s message as is (and the package's own refusals:
    ``NotRegistered``, naming the missing report type, a type or priority the
    user may not use, a per-user limit reached); refused parameters (a DRF
    ``ValidationError``, the user's own input) as ``Invalid parameters:
    {...}``; anything else as a sentence naming the kind of failure (the
    database, a service such as the broker or the cache, the file's storage,
    an internal error) followed by ``Reference: <id>``, the id an admin finds
    in the log and in ``detail``. ``prefix`` starts the message (``"Post-processing
    failed: "``). Callers log ``detail`` with the reference.
    """
    reference = ""
    if isinstance(exc, ReportError):
        message = str(exc) or "The report could not be generated."
    elif isinstance(exc, (NotRegistered, *REFUSALS)):  # the package's own words for users
        message = str(exc)
    elif isinstance(exc, ValidationError):
        message = describe(exc)
    else:
        reference = secrets.token_hex(4)
        message = f"{_kind(exc)} Reference: {reference}."
    return ErrorText(
        message=f"{prefix}{message}"[:MAX_ERROR_LENGTH],
        detail=_detail(exc, reference),
        reference=reference,
    )


#: Errors no retry can fix: a report (or a schedule's run) fails at once, with
#: :func:`explain` saying why. ImportError: a format's optional package missing
#: on the worker (the web server may have it).
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ReportError,
    *REFUSALS,
    ValidationError,
    NotRegistered,
    ValueError,
    TypeError,
    LookupError,
    ImportError,
)
