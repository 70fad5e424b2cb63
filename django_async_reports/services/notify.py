"""Telling the world a report ended: its schedule's execution, e-mail, webhook, signals.

At least once, de-duplicated: a finished report's row records ``notify`` as
its next step (:mod:`.outbox`) until the notification is delivered. A run
claims it with a lease (``notified_at``, held ``NOTIFY_LEASE`` seconds); a
run whose worker died mid-delivery leaves the lease to expire, and the
sweeper's next message takes it over and finishes what was left (channels a
scheduled run had claimed included). E-mails carry a Message-ID stable per
report, so a message sent twice is recognisably the same one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from .. import signals
from ..conf import report_settings
from ..delivery import deliver
from ..models import Report, ScheduleExecution

logger = logging.getLogger(__name__)

Status = Report.Status
Step = Report.Step


def notify(report: Report) -> bool:
    """Record a schedule's outcome, deliver (e-mail, webhook), send the signal; False if not due.

    Due while the row's next step is ``notify`` and no other run holds its
    lease. Cancelled reports are delivered too (a webhook, no e-mail); their
    signal, ``report_cancelled``, was sent by ``cancel_report``.
    """
    if report.status not in Report.FINISHED_STATUSES:
        return False
    ScheduleExecution.objects.record_report_outcome(report)  # none for ad-hoc reports
    now = timezone.now()
    expired = now - timedelta(seconds=int(report_settings.NOTIFY_LEASE))
    due = Report.objects.filter(pk=report.pk, next_step=Step.NOTIFY)
    takeover = bool(due.filter(notified_at__lt=expired).update(notified_at=now))
    claimed = takeover or bool(due.filter(notified_at__isnull=True).update(notified_at=now))
    if not claimed:
        return False
    try:
        deliver(report, takeover=takeover)
    except Exception:
        # Give the lease back so a retry of the step can deliver it.
        Report.objects.filter(pk=report.pk, notified_at=now).update(notified_at=None)
        raise
    done(report, leased_at=now)
    # Receivers run once, after the e-mail went out; one that raises is logged
    # and never keeps the others (or a retry) from running.
    if report.status == Status.COMPLETED:
        signals.send(signals.report_completed, Report, report=report)
    elif report.status == Status.FAILED:
        signals.send(signals.report_failed, Report, report=report, error=report.error_message)
    return True


def done(report: Report, *, leased_at: Any = None) -> None:
    """The notification is over (delivered, or given up): nothing is left to send."""
    rows = Report.objects.filter(pk=report.pk, next_step=Step.NOTIFY)
    if leased_at is not None:
        rows = rows.filter(notified_at=leased_at)
    rows.update(next_step="", next_step_at=None)


def notify_report(report_id: Any) -> bool:
    """The notification step: notify about a finished report."""
    report = Report.objects.select_related("user").filter(pk=report_id).first()
    if report is None:
        return False
    return notify(report)
