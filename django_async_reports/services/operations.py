"""What operators do by hand: send a lost generation again, find the reports that are stuck.

The ``reports`` management command calls these. A report *stuck pending* is
one whose generation message no worker will take: the broker refused it
("Waiting for the queue"), or it was lost or dead-lettered after the broker
took it; the sweeper only sends steps the broker never confirmed, so the
second kind waits for an operator's :func:`requeue_report`. A report *stuck
processing* has had no heartbeat for longer than its hard time limit plus
``STUCK_MARGIN``: the sweeper takes those back by itself.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .. import progress
from ..conf import report_settings
from ..exceptions import InvalidReportState
from ..models import Report
from . import outbox
from .lifecycle import queue_on_commit
from .publishing import generation_limits

Status = Report.Status

#: Progress message of a report an operator queued again.
REQUEUED = "Queued again by an operator"


def requeue_report(report: Report) -> Report:
    """Send a pending report's generation again, under a new task id.

    For a report whose message was lost or dead-lettered: the row records the
    generation as its next step and the message goes out once committed (the
    sweeper sends it if the broker refuses). The new task id keeps the old
    message, should it come back, from taking over the run (a claim is
    conditional: whichever message comes first runs the report, the other
    finds nothing to do). Raises :class:`InvalidReportState` for a report
    that is not pending (failed and cancelled ones are *retried*).
    """
    with transaction.atomic():
        updated = Report.objects.transition(
            report.pk,
            Status.PENDING,
            celery_task_id=str(uuid.uuid4()),
            progress_message=REQUEUED,
            updated_at=timezone.now(),
            **outbox.due(outbox.GENERATE),
        )
        report.refresh_from_db()
        if not updated:
            hint = (
                " (retry it instead)" if report.status in (Status.FAILED, Status.CANCELLED) else ""
            )
            raise InvalidReportState(
                f"Only pending reports can be queued again; this one is {report.status}{hint}."
            )
        progress.write_cache(report.pk, status=Status.PENDING, message=REQUEUED)
        queue_on_commit(report)
    return report


@dataclasses.dataclass(frozen=True)
class StuckReport:
    """A report that looks stuck, and why."""

    report: Report
    reason: str  # "no_heartbeat", "waiting_for_queue" or "pending_too_long"
    seconds: float  # since its last heartbeat (processing) or its last change (pending)
    explanation: str


def stuck_reports(
    *, pending_after: float | None = None, now: datetime | None = None
) -> list[StuckReport]:
    """Processing reports past their hard limit + ``STUCK_MARGIN``, and stuck pending ones.

    Pending ones are those the broker refused ("Waiting for the queue") and,
    when ``pending_after`` is given, those unchanged for that many seconds
    (their message may be lost, dead-lettered, or behind a long queue).
    Oldest first within each kind.
    """
    now = now or timezone.now()
    margin = int(report_settings.STUCK_MARGIN)
    found: list[StuckReport] = []
    processing = Report.objects.filter(status=Status.PROCESSING).select_related("user")
    for report in processing.order_by("updated_at"):
        hard_limit = generation_limits(report.report_type)[1]
        idle = (now - report.updated_at).total_seconds()
        if idle > hard_limit + margin:
            found.append(
                StuckReport(
                    report,
                    "no_heartbeat",
                    idle,
                    f"no heartbeat for {idle:.0f}s (hard limit {hard_limit}s + "
                    f"STUCK_MARGIN {margin}s): the sweeper queues it again",
                )
            )
    pending = Report.objects.filter(status=Status.PENDING).select_related("user")
    for report in pending.order_by("updated_at"):
        idle = (now - report.updated_at).total_seconds()
        if report.progress_message == outbox.WAITING_FOR_QUEUE:
            found.append(
                StuckReport(
                    report,
                    "waiting_for_queue",
                    idle,
                    "the broker refused its message: the sweeper sends it once the broker is back",
                )
            )
        elif pending_after is not None and report.updated_at < now - timedelta(
            seconds=pending_after
        ):
            found.append(
                StuckReport(
                    report,
                    "pending_too_long",
                    idle,
                    f"pending for {idle:.0f}s: its message may be lost or dead-lettered, "
                    "or behind a long queue (requeue it)",
                )
            )
    return found
