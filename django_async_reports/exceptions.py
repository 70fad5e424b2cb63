"""Exceptions raised by django-async-reports, all below ``AsyncReportsError``."""

from __future__ import annotations

import json

from django.core.exceptions import ImproperlyConfigured
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


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, as reports, executions and e-mails record it.

    A DRF ``ValidationError`` (a generator's parameters refused) reads
    ``Invalid parameters: {"field": ["message"]}``; anything else is
    ``ExceptionType: message``. Cut to :data:`MAX_ERROR_LENGTH`.
    """
    if isinstance(exc, ValidationError):
        detail = json.dumps(exc.detail, ensure_ascii=False, default=str)
        text = f"Invalid parameters: {detail}"
    else:
        message = str(exc)
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:MAX_ERROR_LENGTH]


#: Errors no retry can fix: a report (or a schedule's run) fails at once, with
#: :func:`describe` saying why. ImportError: a format's optional package missing
#: on the worker (the web server may have it).
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError,
    NotRegistered,
    ValueError,
    TypeError,
    LookupError,
    ImportError,
)
