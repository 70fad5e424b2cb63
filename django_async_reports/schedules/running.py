"""Run schedules: the periodic tick, run now, and the owner told of a run that failed.

The ``tick_schedules`` task, the REST API and the admin call these functions.
Rules kept here:

* one periodic task (``tick_schedules``) claims the due schedules with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and records each run under the unique
  (schedule, due instant) constraint, so two beats or two ticks never produce
  two runs; the runs missed while beat was down collapse into one;
* reports are created through :func:`~django_async_reports.services.request_report`,
  which dispatches them once the transaction commits; their outcome is copied
  onto the execution by ``ScheduleExecution.objects.record_report_outcome``;
* a run that fails before its report exists (parameters no longer valid,
  generator removed, report refused, invalid stored timing) is a ``failed``
  execution without a report, and its owner is e-mailed once it commits;
* a due schedule whose owner's account is inactive is not run: it is
  disabled, and a ``skipped`` execution whose note says why is recorded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from rest_framework.exceptions import ValidationError

from .. import delivery, routing, services
from ..conf import report_settings
from ..delivery.policy import INACTIVE_OWNER, is_active_account
from ..exceptions import PERMANENT_ERRORS, ErrorText, explain
from ..models import ReportSchedule, ScheduleExecution
from . import times, variables

__all__ = ["rendered_parameters", "run_now", "tick"]

logger = logging.getLogger(__name__)

ExecutionStatus = ScheduleExecution.Status
Delivery = ScheduleExecution.Delivery


# -- a run: its parameters, its delivery, its failure told --------------------------
def _last_success_at(schedule: ReportSchedule) -> datetime:
    """Due instant of the last completed execution; the schedule's creation before any."""
    due_at = getattr(schedule, "last_success_due", None)
    if due_at is None and not hasattr(schedule, "last_success_due"):
        due_at = (
            schedule.executions.filter(status=ExecutionStatus.COMPLETED)
            .order_by("-due_at")
            .values_list("due_at", flat=True)
            .first()
        )
    return due_at or schedule.created_at


def rendered_parameters(schedule: ReportSchedule, now: datetime) -> dict[str, Any]:
    """The schedule's parameters rendered at ``now`` and validated by its generator.

    Raises DRF ``ValidationError`` or ``NotRegistered`` when they no longer fit.
    """
    rendered = variables.render(
        schedule.parameters or {},
        now=now,
        tz=schedule.timezone,
        last_success_at=_last_success_at(schedule),
    )
    unknown = variables.find_unknown(rendered)
    if unknown:
        message = f"Unknown template variable(s): {', '.join(unknown)}."
        raise ValidationError({"parameters": [message]})
    return services.validate_request(schedule.report_type, rendered, user=schedule.owner)


def _delivery_statuses(schedule: ReportSchedule) -> dict[str, str]:
    """Channels the execution will deliver to start ``pending``, the others ``not_requested``."""
    wants_email = schedule.send_email and bool(schedule.email_recipients)
    return {
        "email_status": str(Delivery.PENDING) if wants_email else str(Delivery.NOT_REQUESTED),
        "webhook_status": str(Delivery.PENDING)
        if schedule.webhook_url
        else str(Delivery.NOT_REQUESTED),
    }


def _failed_statuses(schedule: ReportSchedule) -> dict[str, str]:
    """Channels of a run that failed before its report existed.

    The owner is to be told (``pending`` until :func:`_tell_owner` settles it);
    webhooks go out per report, so a schedule's webhook is ``skipped``.
    """
    return {
        "email_status": str(Delivery.PENDING),
        "webhook_status": str(Delivery.SKIPPED)
        if schedule.webhook_url
        else str(Delivery.NOT_REQUESTED),
    }


def _tell_owner(execution: ScheduleExecution, schedule: ReportSchedule) -> None:
    """Once committed, queue the e-mail telling the owner this run failed before its report.

    The tick itself never talks to SMTP: the ``send_schedule_failure_notification``
    task does, and retries. Should the broker refuse the task, the e-mail is
    sent at once instead; no error of either kind reaches the tick.
    """
    execution_id, priority = execution.pk, schedule.priority

    def queue() -> None:
        try:
            routing.send_task(
                routing.SEND_SCHEDULE_FAILURE_NOTIFICATION, [execution_id], priority=priority
            )
        except Exception:
            logger.warning(
                "Could not queue the failure e-mail of execution %s; sending it now.",
                execution_id,
                exc_info=True,
            )
            _tell_owner_now(execution_id)

    transaction.on_commit(queue)


def _tell_owner_now(execution_id: int) -> None:
    """Send the failure e-mail of a run without a report in this process; never raises."""
    try:
        execution = (
            ScheduleExecution.objects.select_related("schedule", "schedule__owner")
            .filter(pk=execution_id)
            .first()
        )
        if execution is None:
            return
        try:
            delivery.deliver_execution_failure(execution)
        except Exception:
            # Nothing will try again: the history must not show it pending.
            delivery.abandon_execution_failure(execution)
            raise
    except Exception:
        logger.exception("Could not e-mail the owner that execution %s failed", execution_id)


def _start_execution(
    schedule: ReportSchedule, *, due_at: datetime, trigger: str, now: datetime
) -> ScheduleExecution | None:
    """Record the run due at ``due_at`` and request its report; None if it already exists.

    Must run inside a transaction: the report is dispatched when it commits.
    Parameters that no longer validate give a failed execution without a
    report, whose owner is e-mailed once it commits.
    """
    failure: ErrorText | None = None
    parameters: dict[str, Any] = {}
    try:
        parameters = rendered_parameters(schedule, now)
    except Exception as exc:
        # Whatever a generator's serializer raises fails this run, recorded
        # and told to the owner, never the whole tick.
        failure = explain(exc)
        if not isinstance(exc, PERMANENT_ERRORS):  # the unexpected: keep its traceback
            logger.exception(
                "Parameters of schedule %s raised (reference %s)", schedule.pk, failure.reference
            )
    try:
        with transaction.atomic():
            execution = ScheduleExecution.objects.create(
                schedule=schedule,
                due_at=due_at,
                trigger=trigger,
                status=ExecutionStatus.FAILED if failure else ExecutionStatus.RUNNING,
                started_at=now,
                finished_at=now if failure else None,
                error=failure.message if failure else "",
                error_detail=failure.detail if failure else "",
                **(_failed_statuses(schedule) if failure else _delivery_statuses(schedule)),
            )
    except IntegrityError:
        logger.info("Schedule %s already ran for %s; skipping.", schedule.pk, due_at)
        return None
    if failure:
        logger.warning(
            "Scheduled run %s of %s failed: %s", execution.pk, schedule.pk, failure.detail
        )
        _tell_owner(execution, schedule)
        return execution
    try:
        report = services.request_report(
            user=schedule.owner,
            report_type=schedule.report_type,
            parameters=parameters,
            title=schedule.title,
            priority=schedule.priority,
            format=schedule.format,
            compress=schedule.compress,
            validated=True,
        )
    except Exception as exc:
        text = explain(exc)
        logger.exception(
            "Could not request the report of schedule %s (reference %s)",
            schedule.pk,
            text.reference,
        )
        execution.status = ExecutionStatus.FAILED
        execution.finished_at = now
        execution.error, execution.error_detail = text.message, text.detail
        statuses = _failed_statuses(schedule)
        for name, value in statuses.items():
            setattr(execution, name, value)
        execution.save(update_fields=["status", "finished_at", "error", "error_detail", *statuses])
        _tell_owner(execution, schedule)
        return execution
    execution.report = report
    ScheduleExecution.objects.filter(pk=execution.pk).update(report=report)
    return execution


def run_now(schedule: ReportSchedule, *, now: datetime | None = None) -> ScheduleExecution:
    """Run ``schedule`` at once, whether enabled or not, as a ``manual`` execution.

    The report is created through ``services.request_report`` and dispatched on
    commit; parameters that no longer validate give a ``failed`` execution
    whose ``error`` says why. ``next_run_at`` is left alone.
    """
    now = times.current_time(now)
    with transaction.atomic():
        execution = None
        # (schedule, due_at) is unique: move a manual run off an instant already taken.
        for shift in range(10):
            execution = _start_execution(
                schedule,
                due_at=now + timedelta(microseconds=shift),
                trigger=str(ScheduleExecution.Trigger.MANUAL),
                now=now,
            )
            if execution is not None:
                break
        if execution is None:
            raise IntegrityError(f"Could not record a manual run of schedule {schedule.pk}.")
        ReportSchedule.objects.filter(pk=schedule.pk).update(last_run_at=now)
        schedule.last_run_at = now
    # A broker that is down leaves the report pending (and the execution
    # running) until the sweeper queues it.
    execution.refresh_from_db()
    return execution


def _claim_due(now: datetime) -> QuerySet[ReportSchedule]:
    """Due, enabled schedules no other tick holds, locked until the transaction ends."""
    last_success = (
        ScheduleExecution.objects.filter(schedule=OuterRef("pk"), status=ExecutionStatus.COMPLETED)
        .order_by("-due_at")
        .values("due_at")[:1]
    )
    return (
        ReportSchedule.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("owner")
        .filter(enabled=True, next_run_at__lte=now)
        .annotate(last_success_due=Subquery(last_success))
        .order_by("next_run_at")[: int(report_settings.SCHEDULE_BATCH_SIZE)]
    )


def _skip_inactive_owner(schedule: ReportSchedule, now: datetime) -> ScheduleExecution | None:
    """Disable a due schedule whose owner is inactive, and record the run it did not make.

    Nothing is generated nor delivered: the owner can no longer sign in to
    see the reports, and their recipients must not keep receiving them.
    Enabling the schedule again (once the account is active) resumes it.
    """
    due_at = schedule.next_run_at
    ReportSchedule.objects.filter(pk=schedule.pk).update(
        enabled=False, next_run_at=None, updated_at=now
    )
    schedule.enabled, schedule.next_run_at = False, None
    statuses = {
        name: str(Delivery.SKIPPED) if value == str(Delivery.PENDING) else value
        for name, value in _delivery_statuses(schedule).items()
    }
    execution = _record_finished_run(
        schedule, due_at, now, status=ExecutionStatus.SKIPPED, note=INACTIVE_OWNER, **statuses
    )
    if execution is None:
        return None
    logger.warning(
        "Schedule %s was disabled: its owner %s is inactive.", schedule.pk, schedule.owner_id
    )
    return execution


def _record_finished_run(
    schedule: ReportSchedule, due_at: datetime | None, now: datetime, **fields: Any
) -> ScheduleExecution | None:
    """Record a run of ``schedule`` that ended as it started (skipped, failed), at ``now``.

    None when that due instant is recorded already (by a tick running at the same time).
    """
    try:
        with transaction.atomic():
            return ScheduleExecution.objects.create(
                schedule=schedule, due_at=due_at, started_at=now, finished_at=now, **fields
            )
    except IntegrityError:
        return None


def _run_due(schedule: ReportSchedule, now: datetime) -> ScheduleExecution | None:
    """Record the latest missed run of a claimed schedule and move it to its next run."""
    first_due = schedule.next_run_at
    assert first_due is not None  # the claim's filter
    if not is_active_account(schedule.owner):
        return _skip_inactive_owner(schedule, now)
    try:
        latest = times.previous_run_at_or_before(schedule, now)
        next_run_at: datetime | None = times.next_run_after(schedule, now)
    except ValueError as exc:
        # Timing no edit through this module allows: stop until it is fixed.
        logger.error("Schedule %s has an invalid timing: %s", schedule.pk, exc)
        next_run_at, latest = None, None
        error: str | None = f"Invalid schedule timing: {exc}"
    else:
        error = None
    due_at = max(first_due, latest) if latest is not None else first_due
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=next_run_at, last_run_at=now)
    schedule.next_run_at, schedule.last_run_at = next_run_at, now
    if error is not None:
        execution = _record_finished_run(
            schedule,
            due_at,
            now,
            status=ExecutionStatus.FAILED,
            error=error,
            **_failed_statuses(schedule),
        )
        if execution is None:
            return None
        _tell_owner(execution, schedule)
        return execution
    return _start_execution(
        schedule, due_at=due_at, trigger=str(ScheduleExecution.Trigger.SCHEDULE), now=now
    )


def tick(now: datetime | None = None) -> list[ScheduleExecution]:
    """Start every due schedule once (at most ``SCHEDULE_BATCH_SIZE`` per call).

    Each claimed schedule gets one execution, due at the latest run instant not
    after ``now`` (missed runs collapse into this one), and its ``next_run_at``
    moves to the first run strictly after ``now``. Returns the executions
    created; their reports are dispatched when the transaction commits.
    """
    now = times.current_time(now)
    started: list[ScheduleExecution] = []
    with transaction.atomic():
        for schedule in _claim_due(now):
            try:
                execution = _run_due(schedule, now)
            except DatabaseError:
                raise  # the transaction is unusable: the next tick tries again
            except Exception:
                # Keep the batch going; the error is logged and the next tick retries.
                logger.exception("Could not start schedule %s", schedule.pk)
                continue
            if execution is not None:
                started.append(execution)
    return started
