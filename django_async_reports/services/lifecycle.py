"""A report's life after its request: claim, retry, fail, cancel, delete.

Every change is one ``Report.objects.transition`` (a conditional update), so
two processes racing on a report never both win.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import progress, signals
from ..conf import report_settings
from ..exceptions import MAX_ERROR_LENGTH, InvalidReportState, ReportDispatchError
from ..models import Report, ScheduleExecution
from ..registry import registry
from . import publishing
from .files import discard_files
from .notify import notify

logger = logging.getLogger(__name__)

Status = Report.Status


# -- queueing ------------------------------------------------------------------------
def dispatch_on_commit(report: Report) -> list[Exception]:
    """Dispatch once committed; a broker error fails the report instead of orphaning it.

    Returns the list the errors are appended to (filled when the commit happens,
    which is at once unless an outer transaction is open).
    """
    errors: list[Exception] = []

    def send() -> None:
        try:
            publishing.dispatch(report)
        except Exception as exc:
            logger.exception("Could not queue report %s", report.pk)
            fail_report(report.pk, f"Could not queue the report: {exc}")
            report.refresh_from_db()
            errors.append(exc)

    transaction.on_commit(send)
    return errors


def raise_dispatch_error(report: Report, errors: list[Exception]) -> None:
    """Raise :class:`ReportDispatchError` when the dispatch of ``report`` failed."""
    if errors:
        raise ReportDispatchError(
            f"Report {report.pk} was saved but could not be queued: {errors[0]}"
        ) from errors[0]


# -- what users and admins do --------------------------------------------------------
def retry_report(report: Report) -> Report:
    """Queue a failed or cancelled report again, on the same row with a new task id."""
    with transaction.atomic():
        updated = Report.objects.transition(
            report.pk,
            [Status.FAILED, Status.CANCELLED],
            status=Status.PENDING,
            celery_task_id=str(uuid.uuid4()),
            progress=0,
            progress_message="Queued",
            error_message="",
            retry_count=0,
            worker_losses=0,
            started_at=None,
            completed_at=None,
            expires_at=None,  # set again when this run finishes
            notified_at=None,
        )
        report.refresh_from_db()
        if not updated:
            raise InvalidReportState(
                f"Only failed or cancelled reports can be retried; this one is {report.status}."
            )
        progress.delete_cache(report.pk)
        dispatch_errors = dispatch_on_commit(report)
    raise_dispatch_error(report, dispatch_errors)
    return report


def cancel_report(report: Report) -> Report:
    """Cancel a pending or running report.

    A pending one never starts; a running one stops at its next progress
    check (within ``CANCEL_CHECK_INTERVAL`` seconds) and its partial file is
    removed. The persisted status is the flag: a revoke would be lost when
    workers restart. A scheduled report's execution fails with "Cancelled";
    once committed, the ``report.cancelled`` webhook is queued (no e-mail).
    """
    now = timezone.now()
    updated = Report.objects.transition(
        report.pk,
        Report.ACTIVE_STATUSES,
        status=Status.CANCELLED,
        progress_message="Cancelled",
        error_message="",  # an earlier attempt's error is not why it ended
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
    )
    report.refresh_from_db()
    if not updated:
        raise InvalidReportState(f"Report is already {report.status} and cannot be cancelled.")
    ScheduleExecution.objects.record_report_outcome(report)
    progress.write_cache(report.pk, status=Status.CANCELLED, message="Cancelled")
    discard_files(report)
    signals.send(signals.report_cancelled, Report, report=report)
    transaction.on_commit(lambda: _notify_cancelled(report))
    return report


def _notify_cancelled(report: Report) -> None:
    """Deliver a cancellation (its webhook); an error is logged, never raised to the caller.

    Should the broker refuse the webhook, ``notified_at`` is given back, so the
    report chain's notification step, still to run, delivers it instead.
    """
    try:
        notify(report)
    except Exception:
        logger.exception("Could not deliver the cancellation of report %s", report.pk)


def delete_report(report: Report) -> None:
    """Delete a report row and, once that is committed, its file.

    An active report is cancelled first so a running worker stops at its next
    progress check instead of writing a file nobody can reach.
    """
    if report.is_active:
        try:
            cancel_report(report)
        except InvalidReportState:
            report.refresh_from_db()
    report_id = report.pk
    with transaction.atomic():
        Report.objects.filter(pk=report_id).delete()
        transaction.on_commit(lambda: discard_files(report))
    progress.delete_cache(report_id)


def expiry_for(report_type: str, finished_at: datetime) -> datetime:
    """When a report of ``report_type`` finished at ``finished_at`` expires.

    The generator's ``retention``, else ``RETENTION_SECONDS`` (also for types
    no longer registered).
    """
    if report_type in registry:
        seconds = registry.get(report_type).get_retention_seconds()
    else:
        seconds = int(report_settings.RETENTION_SECONDS)
    return finished_at + timedelta(seconds=seconds)


# -- what the tasks do -----------------------------------------------------------------
def claim_report(
    report_id: Any, *, redelivered: bool = False, task_id: str | None = None
) -> Report | None:
    """Move a pending report to processing; None when there is nothing to run.

    ``task_id`` is the claiming message's: the row then names the message that
    runs it. A redelivered message (its worker died mid-run) may take over a
    report left in processing, but only one the row says is its own: another
    message of the report (sent again at a higher priority) may be running it.
    Each claim counts in ``attempt``; a report whose worker was lost
    ``MAX_WORKER_LOSSES`` times fails instead of being taken over again.
    """
    now = timezone.now()
    claim = {
        "status": Status.PROCESSING,
        "started_at": now,
        "progress_message": "Starting",
        "updated_at": now,
        "attempt": F("attempt") + 1,
        **({"celery_task_id": task_id} if task_id else {}),
    }
    claimed = Report.objects.transition(report_id, Status.PENDING, **claim)
    if not claimed and redelivered:
        own = Report.objects.filter(celery_task_id=task_id) if task_id else Report.objects.all()
        if _worker_lost_too_often(own.filter(pk=report_id, status=Status.PROCESSING)):
            return None
        claimed = own.transition(
            report_id, Status.PROCESSING, worker_losses=F("worker_losses") + 1, **claim
        )
    if not claimed:
        return None
    report = Report.objects.select_related("user").get(pk=report_id)
    progress.write_cache(
        report.pk, status=Status.PROCESSING, progress=report.progress, message="Starting"
    )
    signals.send(signals.report_started, Report, report=report)
    return report


def _worker_lost_too_often(running: Any) -> bool:
    """Fail the report of ``running`` (a queryset of it, processing) at its last allowed loss.

    The redelivery at hand is one more loss of a worker on top of ``worker_losses``.
    """
    row = running.values("pk", "worker_losses").first()
    if row is None:
        return False
    losses = row["worker_losses"] + 1
    if losses < int(report_settings.MAX_WORKER_LOSSES):
        return False
    fail_report(
        row["pk"],
        f"The worker running this report was lost {losses} times (killed, or out of "
        "memory?); it is not run again. Retry it once the cause is fixed.",
    )
    return True


def is_running(report_id: Any) -> bool:
    """Whether a worker is generating the report now (its status is processing)."""
    return Report.objects.filter(pk=report_id, status=Status.PROCESSING).exists()


def schedule_retry(report_id: Any, error: str) -> bool:
    """Put a processing report back to pending before Celery retries it."""
    updated = Report.objects.transition(
        report_id,
        Status.PROCESSING,
        status=Status.PENDING,
        retry_count=F("retry_count") + 1,
        error_message=error[:MAX_ERROR_LENGTH],
        progress_message="Retrying after an error",
    )
    if updated:
        progress.write_cache(report_id, status=Status.PENDING, message="Retrying after an error")
    return updated


def fail_report(report_id: Any, error: str) -> Report | None:
    """Mark an active report failed for good, remove its file, notify. None if not active."""
    now = timezone.now()
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        return None
    updated = Report.objects.transition(
        report_id,
        Report.ACTIVE_STATUSES,
        status=Status.FAILED,
        error_message=error[:MAX_ERROR_LENGTH],
        progress_message="Failed",
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
    )
    if not updated:
        return None
    discard_files(report)
    Report.objects.filter(pk=report_id).update(result_file="")
    progress.write_cache(report_id, status=Status.FAILED, message="Failed")
    report.refresh_from_db()
    try:
        notify(report)
    except Exception:
        # Hand the e-mail to the notification task, which retries it, rather
        # than hide the error that failed the report.
        logger.warning(
            "Could not notify about failed report %s now; queueing it.", report_id, exc_info=True
        )
        transaction.on_commit(lambda: publishing.queue_notification(report))
    return report
