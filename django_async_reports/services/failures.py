"""A run's error told twice: in words to its requester, in full to admins and the log.

What users read (``error_message``: the API, e-mails, webhooks) never names
hosts, addresses, paths or tracebacks; it carries a reference that the log
line and the admin-only ``error_detail`` repeat
(:func:`~django_async_reports.exceptions.explain`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..exceptions import describe, explain
from ..models import Report
from .lifecycle import fail_report, schedule_retry

logger = logging.getLogger(__name__)


def fail_for(
    report_id: Any,
    exc: BaseException,
    *,
    attempt: int | None = None,
    prefix: str = "",
    timeout: bool = False,
) -> Report | None:
    """Fail the report because of ``exc`` (see :func:`fail_report`); a time limit reads "Timeout".

    The exception and its traceback are logged with the reference, once the
    report did fail here (not when it had already ended).
    """
    text = explain(exc, prefix=prefix)
    message = "Timeout" if timeout else text.message
    failed = fail_report(report_id, message, attempt=attempt, detail=text.detail)
    if failed is not None:
        logger.error(
            "Report %s failed (reference %s): %s",
            report_id,
            text.reference or "-",
            describe(exc),
            exc_info=exc,
        )
    return failed


def retry_for(report: Report, exc: BaseException) -> bool:
    """Queue a retry of the run that raised ``exc`` (see :func:`schedule_retry`); False if spent."""
    text = explain(exc)
    retrying = schedule_retry(report, text.message, detail=text.detail)
    if retrying:
        logger.warning(
            "Report %s failed (reference %s: %s); retrying.",
            report.pk,
            text.reference or "-",
            describe(exc),
            exc_info=exc,
        )
    return retrying
