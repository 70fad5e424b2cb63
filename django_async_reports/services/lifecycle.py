"""A report's life after its request: claim, retry, fail, cancel, delete.

Every change is one ``Report.objects.transition`` (a conditional update), so
two processes racing on a report never both win.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from .. import events, progress, signals
from ..conf import report_settings
from ..exceptions import MAX_ERROR_LENGTH, InvalidReportState
from ..models import Report, ScheduleExecution
from ..registry import registry
from . import limits, outbox, permissions
from .files import discard_files
from .locks import lock_for_user

logger = logging.getLogger(__name__)

Status = Report.Status


# -- queueing ------------------------------------------------------------------------
def queue_on_commit(report: Report) -> None:
    """Send the generation of ``report`` (its row records the step) once committed.

    A broker that is down or refuses leaves the report pending, "Waiting for
    the queue": the sweeper sends it once the broker is back. Nothing is raised.
    """
    transaction.on_commit(lambda: outbox.send(report, outbox.GENERATE))


# -- what users and admins do --------------------------------------------------------
def retry_report(report: Report) -> Report:
    """Queue a failed or cancelled report again, on the same row with a new task id.

    As for a new request: its owner must still be allowed to run its type at
    its priority, and have a free place under ``MAX_ACTIVE_REPORTS_PER_USER``.
    """
    permissions.check_may_run(report.user, report.report_type)
    permissions.check_priority(report.user, report.priority)
    with transaction.atomic():
        limits.take_active_place(report.user)
        updated = Report.objects.transition(
            report.pk,
            [Status.FAILED, Status.CANCELLED],
            status=Status.PENDING,
            celery_task_id=str(uuid.uuid4()),
            progress=0,
            progress_message="Queued",
            error_message="",
            error_detail="",
            retry_count=0,
            worker_losses=0,
            started_at=None,
            completed_at=None,
            expires_at=None,  # set again when this run finishes
            notified_at=None,
            **outbox.due(outbox.GENERATE),
        )
        report.refresh_from_db()
        if not updated:
            raise InvalidReportState(
                f"Only failed or cancelled reports can be retried; this one is {report.status}."
            )
        progress.delete_cache(report.pk)
        queue_on_commit(report)
    return report


def cancel_report(report: Report) -> Report:
    """Cancel a pending or running report.

    A pending one never starts; a running one stops at its next progress
    check (within ``CANCEL_CHECK_INTERVAL`` seconds) and its partial file is
    removed. The persisted status is the flag: a revoke would be lost when
    workers restart. A scheduled report's execution fails with "Cancelled";
    once committed, the ``report.cancelled`` webhook is queued (no e-mail)
    by the notification step.
    """
    now = timezone.now()
    updated = Report.objects.transition(
        report.pk,
        Report.ACTIVE_STATUSES,
        status=Status.CANCELLED,
        progress_message="Cancelled",
        error_message="",  # an earlier attempt's error is not why it ended
        error_detail="",
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
        **outbox.due(outbox.NOTIFY),
    )
    report.refresh_from_db()
    if not updated:
        raise InvalidReportState(f"Report is already {report.status} and cannot be cancelled.")
    ScheduleExecution.objects.record_report_outcome(report)
    progress.write_cache(report.pk, status=Status.CANCELLED, message="Cancelled")
    events.log_event(events.CANCELLED, report)
    discard_files(report)
    signals.send(signals.report_cancelled, Report, report=report)
    transaction.on_commit(lambda: outbox.send(report, outbox.NOTIFY))
    hand_over_place(report.user_id)
    return report


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
    report_id: Any,
    *,
    redelivered: bool = False,
    resumed: bool = False,
    task_id: str | None = None,
) -> Report | None:
    """Move a pending report to processing; None when there is nothing to run.

    ``task_id`` is the claiming message's: the row then names the message that
    runs it. A message that comes back to a report left in processing may take
    it over, but only one the row says is its own (another message of the
    report, sent again at a higher priority or by the sweeper, may be running
    it): a *redelivered* one (its worker died mid-run) or a *resumed* one (a
    retry its run sent when the database was down and the row could not be
    put back to pending). Each claim counts in ``attempt``, which fences the
    run's later writes; a report whose worker was lost ``MAX_WORKER_LOSSES``
    times fails instead of being taken over again.
    """
    now = timezone.now()
    claim = {
        "status": Status.PROCESSING,
        "started_at": now,
        "progress_message": "Starting",
        "updated_at": now,
        "attempt": F("attempt") + 1,
        "next_step": "",  # this message is the generation step: it was sent
        "next_step_at": None,
        **({"celery_task_id": task_id} if task_id else {}),
    }
    claimed = _claim_pending(report_id, claim)
    if not claimed and (redelivered or resumed):
        own = Report.objects.filter(celery_task_id=task_id) if task_id else Report.objects.all()
        running = own.filter(pk=report_id, status=Status.PROCESSING)
        if redelivered and _worker_lost_too_often(running):
            return None
        lost = {"worker_losses": F("worker_losses") + 1} if redelivered else {}
        claimed = own.transition(report_id, Status.PROCESSING, **lost, **claim)
    if not claimed:
        return None
    report = Report.objects.select_related("user").get(pk=report_id)
    # An earlier attempt's rows and rate no longer apply. The owner and the
    # start let the API answer progress polls from the cache alone.
    progress.write_cache(
        report.pk,
        status=Status.PROCESSING,
        owner_id=report.user_id,
        started_at=report.started_at.isoformat() if report.started_at else None,
        progress=report.progress,
        message="Starting",
        rows=0,
        total=None,
        rows_per_second=None,
        eta_seconds=None,
    )
    events.log_event(events.CLAIMED, report)
    signals.send(signals.report_started, Report, report=report)
    return report


#: Seconds a report waits for a place under MAX_RUNNING_PER_USER before the
#: sweeper sends it again (plus the sweeper's grace and interval).
WAIT_FOR_A_PLACE = 5


def _claim_pending(report_id: Any, claim: dict[str, Any]) -> int:
    """PENDING -> PROCESSING, unless the owner already has ``MAX_RUNNING_PER_USER`` running.

    Then the report stays pending, its generation recorded as its next step for
    the sweeper, and this message is done: the worker process goes to the next
    message, another user's perhaps, and one user's flood never holds them all.
    """
    cap = report_settings.MAX_RUNNING_PER_USER
    if cap is None:
        return Report.objects.transition(report_id, Status.PENDING, **claim)
    with transaction.atomic():
        owner = Report.objects.filter(pk=report_id, status=Status.PENDING).values("user_id")
        row = owner.first()
        if row is None:
            return 0
        lock_for_user(row["user_id"], "limit:running")
        running = Report.objects.filter(user_id=row["user_id"], status=Status.PROCESSING).count()
        if running >= int(cap):
            Report.objects.filter(pk=report_id, status=Status.PENDING).update(
                progress_message=f"Waiting: {running} of your reports are running",
                updated_at=timezone.now(),
                **outbox.due(outbox.GENERATE, delay=WAIT_FOR_A_PLACE),
            )
            return 0
        return Report.objects.transition(report_id, Status.PENDING, **claim)


def hand_over_place(user_id: Any) -> None:
    """A report of ``user_id`` ended: send their oldest report waiting for a running place.

    Under ``MAX_RUNNING_PER_USER``, without it, that report would start only at
    the sweeper's next pass. Sent once the ending commits; a report that is no
    longer waiting ignores the message (its claim is conditional).
    """
    if report_settings.MAX_RUNNING_PER_USER is None:
        return
    waiting = (
        Report.objects.filter(user_id=user_id, status=Status.PENDING, next_step=outbox.GENERATE)
        .order_by("created_at")
        .first()
    )
    if waiting is not None:
        transaction.on_commit(lambda: outbox.send(waiting, outbox.GENERATE))


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
    fail_report(row["pk"], worker_lost_message(losses))
    return True


def worker_lost_message(losses: int) -> str:
    return (
        f"The worker running this report was lost {losses} times (killed, out of memory, "
        "or cut off by the broker); it is not run again. Retry it once the cause is fixed."
    )


def heartbeat(report_id: Any) -> None:
    """Tell the sweeper a processing report's run is alive (waiting on a retry, say).

    Best effort: with the database down there is no sweeper to tell either.
    """
    try:
        Report.objects.filter(pk=report_id, status=Status.PROCESSING).update(
            updated_at=timezone.now()
        )
    except DatabaseError:
        logger.warning("Could not record the heartbeat of report %s", report_id)


def is_running(report_id: Any) -> bool:
    """Whether a worker is generating the report now (its status is processing)."""
    return Report.objects.filter(pk=report_id, status=Status.PROCESSING).exists()


def schedule_retry(report: Report, error: str, *, detail: str = "") -> bool:
    """Put the run's report back to pending and queue its retry; False when retries are spent.

    ``error`` is what the requester reads meanwhile, ``detail`` what admins
    read (see :func:`~django_async_reports.exceptions.explain`).

    The row records the retry as its next step, due after ``RETRY_COUNTDOWN``,
    before it is published with that countdown: a broker that refuses it
    leaves the step to the sweeper. Only the run that claimed ``report.attempt``
    may do this.
    """
    countdown = int(report_settings.RETRY_COUNTDOWN)
    updated = Report.objects.filter(
        attempt=report.attempt, retry_count__lt=int(report_settings.MAX_RETRIES)
    ).transition(
        report.pk,
        Status.PROCESSING,
        status=Status.PENDING,
        retry_count=F("retry_count") + 1,
        error_message=error[:MAX_ERROR_LENGTH],
        error_detail=detail[:MAX_ERROR_LENGTH],
        progress_message="Retrying after an error",
        **outbox.due(outbox.GENERATE, delay=countdown),
    )
    if not updated:
        return False
    progress.write_cache(report.pk, status=Status.PENDING, message="Retrying after an error")
    report.refresh_from_db()
    outbox.send(report, outbox.GENERATE, countdown=countdown)
    return True


def fail_report(
    report_id: Any, error: str, *, attempt: int | None = None, detail: str = ""
) -> Report | None:
    """Mark an active report failed for good, remove its file, queue its notification.

    ``error`` is what users read (the API, e-mails, webhooks): words, never
    hosts or paths; ``detail`` the exception and traceback admins read (see
    :func:`~django_async_reports.exceptions.explain`).

    None if it is not active (or, with ``attempt``, no longer that run's).
    The notification (e-mail, webhook) is a message of its own: no SMTP
    server or second publish holds the caller, and a broker that is down
    leaves it to the sweeper.
    """
    now = timezone.now()
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        return None
    rows = Report.objects.all() if attempt is None else Report.objects.filter(attempt=attempt)
    updated = rows.transition(
        report_id,
        Report.ACTIVE_STATUSES,
        status=Status.FAILED,
        error_message=error[:MAX_ERROR_LENGTH],
        error_detail=detail[:MAX_ERROR_LENGTH],
        progress_message="Failed",
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
        **outbox.due(outbox.NOTIFY),
    )
    if not updated:
        return None
    report.refresh_from_db()
    ScheduleExecution.objects.record_report_outcome(report)
    discard_files(report)
    Report.objects.filter(pk=report_id).update(result_file="")
    progress.write_cache(report_id, status=Status.FAILED, message="Failed")
    report.refresh_from_db()
    events.log_event(events.FAILED, report, level=logging.WARNING, error=report.error_message)
    transaction.on_commit(lambda: outbox.send(report, outbox.NOTIFY))
    hand_over_place(report.user_id)
    return report
