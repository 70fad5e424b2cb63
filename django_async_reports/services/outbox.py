"""The report row as an outbox: each step's message is recorded before it is sent.

A step (generate, assemble a partitioned run's parts, post-process, notify) is written on the row as
``next_step`` in the same UPDATE that makes it due, then published; a publish
the broker confirmed clears it. When the publish fails (broker down or
blocked) or the process dies first, the row keeps the step and the sweeper
(:mod:`.sweeping`) sends it. Sending a step twice is harmless: every step
starts with a conditional update and finds nothing to do the second time.

``notify`` stays recorded until the notification is *delivered*, not only
queued: it is the notification's lease (see :mod:`.notify`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from .. import events
from ..conf import report_settings
from ..models import Report
from . import publishing

logger = logging.getLogger(__name__)

Step = Report.Step
# The steps as plain strings (what the row stores).
GENERATE = str(Step.GENERATE)
POST_PROCESS = str(Step.POST_PROCESS)
ASSEMBLE = str(Step.ASSEMBLE)
NOTIFY = str(Step.NOTIFY)

#: Progress message of a report whose generation could not be queued yet.
WAITING_FOR_QUEUE = "Waiting for the queue"


def due(step: str, *, delay: float = 0) -> dict[str, Any]:
    """The fields recording ``step`` as the row's next message, due after ``delay`` seconds."""
    return {"next_step": step, "next_step_at": timezone.now() + timedelta(seconds=delay)}


def send(report: Report, step: str, *, countdown: int | None = None) -> bool:
    """Publish ``step`` for ``report``; True once the broker confirmed it.

    A broker error is logged, never raised: the step stays on the row for the
    sweeper. A generation that could not be queued says so in its progress
    message.
    """
    try:
        publishing.publish_step(report, step, countdown=countdown)
    except Exception:
        logger.warning(
            "Could not queue the %s step of report %s; the sweeper will.",
            step,
            report.pk,
            exc_info=True,
        )
        if step == GENERATE:
            Report.objects.filter(
                pk=report.pk, status=Report.Status.PENDING, next_step=step
            ).update(progress_message=WAITING_FOR_QUEUE)
            report.progress_message = WAITING_FOR_QUEUE
        return False
    if step == NOTIFY:
        # A notification's step ends when it is delivered: until then the
        # sweeper sends it again only once its lease could have expired.
        lease = timedelta(seconds=int(report_settings.NOTIFY_LEASE))
        Report.objects.filter(pk=report.pk, next_step=step).update(
            next_step_at=timezone.now() + lease
        )
    else:
        sent(report, step)
    if step == GENERATE:
        events.log_event(events.QUEUED, report)
    return True


def sent(report: Report, step: str) -> None:
    """Clear ``step`` from the row, unless a later claim has recorded one since.

    The attempt in the condition keeps a slow publisher from clearing the
    step a later run (a retry after the claim it published for) recorded.
    """
    Report.objects.filter(pk=report.pk, next_step=step, attempt=report.attempt).update(
        next_step="", next_step_at=None
    )
    report.next_step, report.next_step_at = "", None


def publish_grace() -> timedelta:
    """How long a recorded step is left to the process that recorded it.

    That process publishes at once, within two connection attempts and a
    publisher confirm each: about ``PUBLISH_TIMEOUT`` plus two connection
    timeouts at worst, well under the grace.
    """
    return timedelta(seconds=max(30.0, 3 * float(report_settings.PUBLISH_TIMEOUT)))
