"""One structured log line per lifecycle event of a report (logger ``django_async_reports.events``).

Each record carries the same ``extra`` fields (``event``, ``report_id``,
``report_type``, ``user_id``, ``attempt``, ``duration``, ``rows``, plus a few
per event such as ``percent`` or ``channel``), so a JSON formatter
(python-json-logger, django-structlog...) turns them into searchable keys,
while the message stays readable in a plain log. See ``docs/logging.md``.

A leaf module (it imports nothing of the package): every layer, from the
API to the progress tracker and delivery, may emit.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("django_async_reports.events")

REQUESTED = "requested"
QUEUED = "queued"
CLAIMED = "claimed"
PROGRESS = "progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
DELIVERED = "delivered"

#: Every event name, in the order a report lives them.
EVENTS = (REQUESTED, QUEUED, CLAIMED, PROGRESS, COMPLETED, FAILED, CANCELLED, DELIVERED)

#: The percentages at which a running report logs a ``progress`` event.
PROGRESS_MILESTONES = (25, 50, 75)

#: The ``extra`` keys every event record has (None when not known).
FIELDS = ("event", "report_id", "report_type", "user_id", "attempt", "duration", "rows")


def log_event(
    event: str,
    report: Any,
    *,
    duration: float | None = None,
    rows: int | None = None,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """Log ``event`` of ``report`` (a ``Report``) with the structured fields as ``extra``.

    ``duration`` (seconds) and ``rows`` default to the finished report's
    (``Report.duration_seconds``, ``Report.row_count``); ``fields`` are added
    as they are (``percent``, ``channel``, ``error``...). Never raises: a log
    line must not fail a report.
    """
    try:
        if duration is None:
            duration = getattr(report, "duration_seconds", None)
        if rows is None:
            rows = getattr(report, "row_count", None)
        extra: dict[str, Any] = {
            "event": event,
            "report_id": str(report.pk),
            "report_type": report.report_type,
            "user_id": report.user_id,
            "attempt": report.attempt,
            "duration": duration,
            "rows": rows,
            **fields,
        }
        logger.log(level, _message(extra), extra=extra)
    except Exception:  # pragma: no cover - defensive: logging is never the failure
        logger.debug("Could not log the %s event of a report", event, exc_info=True)


def _message(extra: dict[str, Any]) -> str:
    """``Report <id> (<type>) <event>[ <percent>%][ via <channel>][: <rows> rows][ in <s> s]``."""
    text = f"Report {extra['report_id']} ({extra['report_type']}) {extra['event']}"
    if extra.get("percent") is not None:
        text += f" {extra['percent']}%"
    if extra.get("channel"):
        text += f" via {extra['channel']}"
    details = []
    if extra.get("rows") is not None:
        details.append(f"{extra['rows']:,} rows")
    if extra.get("duration") is not None:
        details.append(f"in {extra['duration']:.1f} s")
    if details:
        text += ": " + " ".join(details)
    if extra.get("attempt"):
        text += f" (attempt {extra['attempt']})"
    return text
