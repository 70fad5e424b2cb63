"""Telling the world a report ended: its schedule's execution, e-mail, webhook, signals."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from .. import signals
from ..delivery import deliver
from ..models import Report, ScheduleExecution

logger = logging.getLogger(__name__)

Status = Report.Status


def notify(report: Report) -> bool:
    """Record a schedule's outcome, deliver (e-mail, webhook), send the signal, once.

    The ``notified_at`` column is claimed with a conditional update first, so a
    retried or redelivered notification step never notifies twice. Cancelled
    reports are delivered too (a webhook, no e-mail); their signal,
    ``report_cancelled``, was sent by ``cancel_report``.
    """
    if report.status not in Report.FINISHED_STATUSES:
        return False
    ScheduleExecution.objects.record_report_outcome(report)  # none for ad-hoc reports
    claimed = Report.objects.filter(pk=report.pk, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return False
    try:
        deliver(report)
    except Exception:
        # Give the claim back so a retry of the step can deliver it.
        Report.objects.filter(pk=report.pk).update(notified_at=None)
        raise
    # Receivers run once, after the e-mail went out; one that raises is logged
    # and never keeps the others (or a retry) from running.
    if report.status == Status.COMPLETED:
        signals.send(signals.report_completed, Report, report=report)
    elif report.status == Status.FAILED:
        signals.send(signals.report_failed, Report, report=report, error=report.error_message)
    return True


def notify_report(report_id: Any) -> bool:
    """Third chain step: notify about a finished report."""
    report = Report.objects.select_related("user").filter(pk=report_id).first()
    if report is None:
        return False
    return notify(report)
