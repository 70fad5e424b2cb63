"""Signals sent during a report's life. Receivers get ``sender=Report`` and ``report=``.

Each is sent with :func:`send`, after the change it reports is committed (or
at least written): a receiver that raises is logged and never undoes it, nor
keeps the other receivers from running.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

#: A report was created and its generation queued. Arguments: report.
report_requested = Signal()

#: A worker started generating a report. Arguments: report.
report_started = Signal()

#: A report finished and its file is downloadable (sent by the notification
#: step, once per report). Arguments: report.
report_completed = Signal()

#: A report failed for good (no retry left, a timeout, or a permanent error).
#: Arguments: report, error (the message stored in report.error_message).
report_failed = Signal()

#: A report was cancelled by its requester or an admin. Arguments: report.
report_cancelled = Signal()


def send(signal: Signal, sender: Any, **arguments: Any) -> None:
    """Send ``signal`` to every receiver; one that raises is logged at ERROR, not raised.

    The event has happened by then (a report claimed, cancelled, finished):
    a failing receiver must not turn it into an error of the request or the
    worker, which would leave the report half-way (a claimed report retried
    as if it had never started).
    """
    for receiver, response in signal.send_robust(sender=sender, **arguments):
        if isinstance(response, Exception):
            logger.error(
                "Receiver %r of %s raised for report %s",
                receiver,
                _name_of(signal),
                getattr(arguments.get("report"), "pk", None),
                exc_info=response,
            )


def _name_of(signal: Signal) -> str:
    for name, value in globals().items():
        if value is signal:
            return name
    return repr(signal)
