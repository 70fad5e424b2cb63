"""Celery tasks: thin wrappers that load a report by primary key and call services.

Arguments are JSON (the report id as a string). Tasks acknowledge late and
are re-queued when their worker process dies, so a killed worker loses
nothing; the conditional updates in :mod:`.services` make the re-run safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NoReturn

from celery import Task, shared_task
from celery.exceptions import Retry, SoftTimeLimitExceeded, TimeLimitExceeded
from django.db import DatabaseError, connections

from . import routing, services
from .conf import report_settings
from .exceptions import PERMANENT_ERRORS, ReportCancelled

logger = logging.getLogger(__name__)

#: Acknowledged once done, and re-queued when the worker process dies (see above).
_LATE_ACK = {"acks_late": True, "reject_on_worker_lost": True}
#: Every task but generate_report: TASK_SOFT_TIME_LIMIT / TASK_TIME_LIMIT's defaults, for
#: an app that skips configure_celery (which applies the settings).
_STEP_TIME_LIMITS = {"soft_time_limit": 300, "time_limit": 360}


# Celery's result backend (task states for Flower and AsyncResult) only mirrors
# what the report's row holds: a backend that fails (Redis down) must not fail a
# report. After a failed write, writes pause for a minute per process, since
# each one may block for as long as the backend's own retry policy.
_RESULTS_PAUSE = 60.0
_results_paused_until = 0.0
_RESULT_WRITES = frozenset(
    {
        "store_result",
        "mark_as_started",
        "mark_as_done",
        "mark_as_failure",
        "mark_as_retry",
        "mark_as_revoked",
    }
)


class _BestEffortResults:
    """A result backend whose writes are skipped, logged, never raised, when it fails."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._backend, name)
        if name not in _RESULT_WRITES or not callable(value):
            return value

        def write(*args: Any, **kwargs: Any) -> Any:
            global _results_paused_until
            if time.monotonic() < _results_paused_until:
                return None
            try:
                return value(*args, **kwargs)
            except Exception:
                _results_paused_until = time.monotonic() + _RESULTS_PAUSE
                logger.warning(
                    "The Celery result backend failed (%s); task states are not written for "
                    "%d s. Reports are unaffected: their state is in the database.",
                    name,
                    _RESULTS_PAUSE,
                    exc_info=True,
                )
                return None

        return write


class ResilientTask(Task):
    """Base of the package's tasks: their result writes are best effort (see above)."""

    @property
    def backend(self) -> Any:
        return _BestEffortResults(Task.backend.fget(self))

    @backend.setter
    def backend(self, value: Any) -> None:
        self._backend = value


class ReportTask(ResilientTask):
    """Fails the report when Celery gives up on the task outside its body.

    A hard time limit kills the worker process: the body never sees it, but
    Celery calls ``on_failure`` in the main process. ``fail_report`` only acts
    on active reports, so failures already handled in the body are untouched.
    """

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        report_id = (args or [None])[0] or (kwargs or {}).get("report_id")
        if report_id is None:
            return
        try:
            services.fail_for(report_id, exc, timeout=isinstance(exc, TimeLimitExceeded))
        except Exception:
            logger.exception("Could not mark report %s failed after %r", report_id, exc)


@shared_task(
    bind=True,
    base=ReportTask,
    name=routing.GENERATE_REPORT,
    max_retries=3,
    soft_time_limit=600,
    track_started=True,
    **_LATE_ACK,
)
def generate_report(self: Any, report_id: str) -> dict[str, Any]:
    """Generate a report's file, with progress, cancellation, retries and a timeout.

    Hands over to the post-processing step when done (the row records it
    first: see ``services.outbox``).
    """
    delivery_info = self.request.delivery_info or {}
    try:
        report = services.claim_report(
            report_id,
            redelivered=bool(delivery_info.get("redelivered")),
            resumed=bool(self.request.retries),
            task_id=self.request.id,
        )
    except Exception as exc:
        # The database is unreachable: the report is still pending, try again later.
        _retry_without_database(self, exc)
    if report is None:
        logger.info("Report %s is not pending; nothing to do.", report_id)
        return {"report_id": report_id, "status": "skipped"}

    def task_state(percent: int, message: str) -> None:
        # Mirrored for AsyncResult when TASK_RESULTS is on; best effort (ResilientTask).
        if self.request.id and report_settings.TASK_RESULTS:
            self.update_state(state="PROGRESS", meta={"progress": percent, "message": message})

    try:
        report = services.generate_or_split(report, task_state=task_state)
    except ReportCancelled:
        logger.info(
            "Report %s was cancelled while running (or taken over by another run).", report_id
        )
        return {"report_id": report_id, "status": "cancelled"}
    except SoftTimeLimitExceeded as exc:
        services.fail_for(report_id, exc, attempt=report.attempt, timeout=True)
        raise
    except PERMANENT_ERRORS as exc:
        services.fail_for(report_id, exc, attempt=report.attempt)
        raise
    except Exception as exc:
        try:
            if isinstance(exc, DatabaseError):
                _drop_broken_connections()  # a restarted server: reconnect for what follows
            retrying = services.retry_for(report, exc)
        except DatabaseError as db_exc:
            # The database is down: the row cannot be put back to pending. The
            # retry message (same task id) takes the report over from processing.
            _retry_without_database(self, db_exc)
        if retrying:
            # Sent already (services.schedule_retry): Retry only records the state,
            # as Task.retry does after its own publish. A "success" here would
            # stop Celery from recording the last attempt's failure (same task id).
            raise Retry(exc=exc, when=report_settings.RETRY_COUNTDOWN) from exc
        services.fail_for(report_id, exc, attempt=report.attempt)
        raise
    return {
        "report_id": report_id,
        "status": "generated",
        "rows": report.result_data.get("row_count"),
    }


#: Retries of a generation whose database is unreachable, and their backoff
#: (5, 10, 20... s, at most 5 minutes): about five minutes in all, the time a
#: restart or a failover takes, whatever RETRY_COUNTDOWN says.
DATABASE_RETRIES = 6


def _database_retry_countdown(retries: int) -> int:
    return min(5 * 2**retries, 300)


def _retry_without_database(task: Any, exc: Exception) -> None:
    """Retry the generation by message alone, the database being unreachable.

    Celery counts these retries in the message. A broker that refuses the
    retry too makes Celery drop the message (``Reject``): the row, still
    pending or processing, is then the sweeper's.
    """
    _drop_broken_connections()
    raise task.retry(
        exc=exc,
        countdown=_database_retry_countdown(task.request.retries),
        max_retries=max(DATABASE_RETRIES, int(report_settings.MAX_RETRIES)),
    ) from exc


def _drop_broken_connections() -> None:
    """Close database connections a restart or failover broke, so the next query reconnects.

    Not one inside a transaction (a test's, or a caller's): closing it would
    end the transaction under the caller.
    """
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def _post_process_countdown(retries: int) -> int:
    """Seconds before post-processing is tried again: 10, 20, 40... up to 5 minutes.

    A finished file is only given up (and deleted) after about 15 minutes of
    waiting on failures, never for a short database or storage outage.
    """
    return min(10 * 2**retries, 300)


@shared_task(
    bind=True,
    base=ReportTask,
    name=routing.POST_PROCESS_REPORT,
    max_retries=7,
    **_STEP_TIME_LIMITS,
    **_LATE_ACK,
)
def post_process_report(self: Any, report_id: str) -> dict[str, Any]:
    """Record file size and checksum, mark the report completed, hand over to the notification."""
    try:
        report = services.post_process(report_id)
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            _drop_broken_connections()
        if self.request.retries < self.max_retries:
            services.heartbeat(report_id)  # waiting on a retry is not a lost run
            countdown = _post_process_countdown(self.request.retries)
            raise self.retry(exc=exc, countdown=countdown) from exc
        services.fail_for(report_id, exc, prefix="Post-processing failed: ")
        raise
    status = report.status if report is not None else "skipped"
    return {"report_id": report_id, "status": status}


#: The notification tasks (a report's delivery, a failed run's e-mail): retried three
#: times, :func:`_retry_delivery` settling what the last attempt left pending.
_DELIVERY_TASK: dict[str, Any] = {
    "bind": True,
    "base": ResilientTask,
    "max_retries": 3,
    "default_retry_delay": 30,
    **_STEP_TIME_LIMITS,
    **_LATE_ACK,
}


@shared_task(name=routing.SEND_REPORT_NOTIFICATION, **_DELIVERY_TASK)
def send_report_notification(self: Any, report_id: str) -> dict[str, Any]:
    """Deliver a finished report's e-mail and webhook and send its signal, once it is due."""
    try:
        sent = services.notify_report(report_id)
    except Exception as exc:
        what = f"the delivery of report {report_id}"
        _retry_delivery(self, exc, partial(_abandon_delivery, report_id), what)
    return {"report_id": report_id, "notified": sent}


def _abandon_delivery(report_id: str) -> None:
    """Retries are spent: mark what delivery left pending as failed, and stop sending it."""
    from .delivery import abandon
    from .models import Report

    report = Report.objects.filter(pk=report_id).select_related("user").first()
    if report is not None:
        abandon(report)
        services.notification_done(report)


def _retry_delivery(task: Any, exc: Exception, settle: Callable[[], object], what: str) -> NoReturn:
    """Retry a delivery task; when its retries are spent, first ``settle`` (logged if it fails)."""
    if task.request.retries >= task.max_retries:
        try:
            settle()
        except Exception:
            logger.exception("Could not settle %s", what)
    raise task.retry(exc=exc) from exc


# -- the sweeper -------------------------------------------------------------------
@shared_task(base=ResilientTask, name=routing.SWEEP_REPORTS, **_STEP_TIME_LIMITS)
def sweep_reports() -> dict[str, int]:
    """Send what was not sent, take back what was lost (beat: every ``SWEEP_INTERVAL``).

    Safe to run twice at once: rows are claimed with SKIP LOCKED.
    """
    return services.sweep().as_dict()


# -- schedules (tick) ---------------------------------------------------------------
@shared_task(name=routing.SEND_SCHEDULE_FAILURE_NOTIFICATION, **_DELIVERY_TASK)
def send_schedule_failure_notification(self: Any, execution_id: int) -> dict[str, Any]:
    """E-mail a schedule's owner that a run failed before its report existed, at most once.

    Queued by the scheduler once the failed execution is committed. SMTP
    errors that may pass are retried; when the retries are spent the
    execution's e-mail is recorded ``failed``.
    """
    from .delivery import abandon_execution_failure, deliver_execution_failure
    from .models import ScheduleExecution

    execution = (
        ScheduleExecution.objects.select_related("schedule", "schedule__owner")
        .filter(pk=execution_id)
        .first()
    )
    if execution is None:
        return {"execution_id": execution_id, "email_status": None}
    try:
        status = deliver_execution_failure(execution)
    except Exception as exc:
        what = f"the e-mail of execution {execution_id}"
        _retry_delivery(self, exc, partial(abandon_execution_failure, execution), what)
    return {"execution_id": execution_id, "email_status": status}


@shared_task(base=ResilientTask, name=routing.TICK_SCHEDULES, **_STEP_TIME_LIMITS)
def tick_schedules() -> dict[str, int]:
    """Start every due schedule (beat sends this every ``SCHEDULE_TICK_INTERVAL`` seconds).

    Safe to run twice at once or late: claimed rows are locked and each run is
    recorded once under the (schedule, due instant) constraint.
    """
    from . import schedules

    executions = schedules.tick()
    failed = sum(1 for e in executions if e.status == e.Status.FAILED)
    skipped = sum(1 for e in executions if e.status == e.Status.SKIPPED)
    return {"started": len(executions) - failed - skipped, "failed": failed, "skipped": skipped}


# -- retention ---------------------------------------------------------------------
@shared_task(
    base=ResilientTask,
    name=routing.CLEANUP_EXPIRED_REPORTS,
    **_STEP_TIME_LIMITS,
)
def cleanup_expired_reports() -> dict[str, int]:
    """Delete expired reports and their files (beat sends this every ``CLEANUP_INTERVAL``).

    Safe to run twice at once: batches are claimed with SKIP LOCKED.
    """
    from .retention import cleanup_expired_reports as cleanup

    result = cleanup()
    return {
        "reports": result.reports,
        "files": result.files,
        "batches": result.batches,
        "kept": result.kept,
    }


# -- delivery (webhooks) -------------------------------------------------------------
@shared_task(
    bind=True,
    base=ResilientTask,
    name=routing.DELIVER_WEBHOOK,
    max_retries=None,  # attempts are counted in the arguments (WEBHOOK_MAX_ATTEMPTS)
    **_STEP_TIME_LIMITS,
    **_LATE_ACK,
)
def deliver_webhook(
    self: Any, report_id: str, event: str, message_id: str, attempt: int = 1
) -> dict[str, Any]:
    """POST one attempt of a report's webhook; retry with backoff while it may succeed.

    ``message_id`` stays the same across attempts (the ``webhook-id`` header);
    ``attempt`` counts them, and each is recorded as a ``WebhookDelivery``.
    """
    from .delivery import webhooks

    attempt = int(attempt)
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    next_args = (report_id, event, message_id, attempt + 1)
    try:
        outcome = webhooks.attempt_delivery(
            report_id, event, message_id, attempt, redelivered=redelivered
        )
    except Exception as exc:
        # The database, not the receiver, failed: try again as a new attempt.
        if attempt < webhooks.max_attempts():
            raise self.retry(
                exc=exc, args=next_args, countdown=webhooks.retry_countdown(attempt)
            ) from exc
        try:
            webhooks.give_up(report_id)
        except Exception:
            logger.exception("Could not mark the webhook of report %s failed", report_id)
        raise
    if outcome.retry_in is not None:
        raise self.retry(args=next_args, countdown=outcome.retry_in)
    return outcome.as_dict()
