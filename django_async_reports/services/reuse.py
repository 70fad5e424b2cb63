"""Reuse of identical reports: find one worth returning, serialise identical requests.

A completed report is *reused*; an active one is *joined*, and takes the
joiner's priority when that is more urgent.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import report_settings
from ..models import Report
from . import publishing
from .outbox import WAITING_FOR_QUEUE, publish_grace

logger = logging.getLogger(__name__)

Status = Report.Status


#: Priorities from the most to the least urgent.
PRIORITY_ORDER = [str(p) for p in Report.Priority.values]


def raise_priority(report: Report, priority: str) -> Report:
    """Give a joined report the joiner's priority when it is more urgent.

    A pending report is sent again on the new route with a new task id (the
    row names it); whichever message arrives first claims the report and the
    other finds nothing to do. A running one only records the priority.
    """
    if priority not in PRIORITY_ORDER or PRIORITY_ORDER.index(priority) >= PRIORITY_ORDER.index(
        report.priority
    ):
        return report
    task_id = str(uuid.uuid4())
    previous = {"priority": report.priority, "celery_task_id": report.celery_task_id}
    pending = Report.objects.transition(
        report.pk, Status.PENDING, priority=priority, celery_task_id=task_id
    )
    if not pending:
        Report.objects.transition(report.pk, Report.ACTIVE_STATUSES, priority=priority)
    report.refresh_from_db()
    if pending:

        def send() -> None:
            try:
                publishing.publish_step(report, str(Report.Step.GENERATE))
            except Exception:
                # The first message is still queued: the report runs, at its old
                # priority, which the row (and the answer, when this ran before it
                # was returned) says again.
                logger.warning(
                    "Could not send report %s again as %s", report.pk, priority, exc_info=True
                )
                Report.objects.filter(pk=report.pk, celery_task_id=task_id).update(**previous)
                for name, value in previous.items():
                    setattr(report, name, value)

        transaction.on_commit(send)
    return report


def find_reusable_report(
    user: Any, fingerprint: str, window_seconds: int, *, margin_seconds: int = 60
) -> Report | None:
    """The newest report of ``user`` with ``fingerprint`` still worth returning, if any.

    A running one is joined unless the broker refused its generation, and
    while it could still be running: one older
    than every attempt's time limit and retry delay put together is stuck (its
    message lost), and a new report is made instead. A completed one must not
    expire within ``margin_seconds``, or the client would meet a 410 at once.
    """
    now = timezone.now()
    candidates = Report.objects.filter(user=user, fingerprint=fingerprint).order_by("-created_at")
    # Never one whose generation the broker refused (or that is waiting longer
    # than a publish takes): a joiner would wait on an outage. One being sent
    # right now (an identical request a moment ago) is joined.
    unsent = Q(next_step=Report.Step.GENERATE) & (
        Q(progress_message=WAITING_FOR_QUEUE) | Q(next_step_at__lt=now - publish_grace())
    )
    active = (
        candidates.filter(status__in=Report.ACTIVE_STATUSES, created_at__gte=now - stale_after())
        .exclude(unsent)
        .first()
    )
    if active is not None:
        return active
    margin = timedelta(seconds=margin_seconds)
    return (
        candidates.filter(
            status=Status.COMPLETED,
            completed_at__gte=now - timedelta(seconds=window_seconds),
        )
        .exclude(result_file="")
        .exclude(expires_at__lte=now + margin)
        .first()
    )


def expiry_margin(generator_class: Any) -> int:
    """Time a reused report must have left: a minute, or a tenth of a shorter retention."""
    return min(60, generator_class.get_retention_seconds() // 10)


def stale_after() -> timedelta:
    """How old an active report can get before joining it would wait forever."""
    attempts = int(report_settings.MAX_RETRIES) + 1
    per_attempt = report_settings.time_limit + int(report_settings.RETRY_COUNTDOWN)
    return timedelta(seconds=attempts * per_attempt + 600)
