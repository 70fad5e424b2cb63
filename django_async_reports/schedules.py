"""The one code path for schedules: create, update, enable, run now, tick, record outcomes.

The REST API, the admin, management commands and the periodic tick all call
these functions. Rules kept here:

* ``next_run_at`` is always computed by :mod:`.schedule_times` in the
  schedule's time zone; a disabled schedule has none;
* one periodic task (``tick_schedules``) claims the due schedules with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and records each run under the unique
  (schedule, due instant) constraint, so two beats or two ticks never produce
  two runs; the runs missed while beat was down collapse into one;
* reports are created through :func:`.services.request_report`, which
  dispatches them once the transaction commits;
* a run that fails before its report exists (parameters no longer valid,
  generator removed, report refused, invalid stored timing) is a ``failed``
  execution without a report, and its owner is e-mailed once it commits.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from . import routing, schedule_times, services, template_variables
from .conf import report_settings
from .exceptions import MAX_ERROR_LENGTH, NotRegistered, describe
from .models import Report, ReportSchedule, ScheduleExecution
from .registry import registry

__all__ = [
    "create_schedule",
    "run_now",
    "set_enabled",
    "tick",
    "update_schedule",
    "validate_parameters",
]

logger = logging.getLogger(__name__)

Frequency = ReportSchedule.Frequency
ExecutionStatus = ScheduleExecution.Status
Delivery = ScheduleExecution.Delivery

#: Fields callers may set through :func:`create_schedule` / :func:`update_schedule`.
EDITABLE_FIELD_ORDER = (
    "report_type",
    "title",
    "parameters",
    "priority",
    "format",
    "compress",
    "frequency",
    "cron_expression",
    "time_of_day",
    "weekday",
    "day_of_month",
    "timezone",
    "enabled",
    "send_email",
    "email_recipients",
    "webhook_url",
    "skip_if_empty",
)
EDITABLE_FIELDS = frozenset(EDITABLE_FIELD_ORDER)
#: Changing one of these recomputes ``next_run_at``.
TIMING_FIELDS = frozenset(
    {"frequency", "cron_expression", "time_of_day", "weekday", "day_of_month", "timezone"}
)
#: Changing one of these validates the parameters again.
PARAMETER_FIELDS = frozenset({"report_type", "parameters", "timezone"})
# Errors a run can hit before its report exists: recorded on the execution.
RUN_ERRORS = (ValidationError, NotRegistered, ValueError, TypeError, LookupError)


# -- validation ------------------------------------------------------------------
def validate_parameters(
    report_type: str, parameters: Any, tz_name: str, user: Any
) -> dict[str, Any]:
    """Check ``parameters`` (with template variables) and return them to store unrendered.

    Unknown variables are rejected; a sample rendering at the current time in
    ``tz_name`` is then validated by the generator's parameters serializer.
    Raises DRF ``ValidationError`` with errors under ``parameters`` (or
    ``report_type`` / ``timezone`` when those are wrong).
    """
    try:
        generator_class = registry.get(report_type)
    except NotRegistered:
        known = ", ".join(g.report_type for g in registry) or "none"
        raise ValidationError(
            {"report_type": [f'"{report_type}" is not a known report type. Known types: {known}.']}
        ) from None
    if not isinstance(parameters, Mapping):
        raise ValidationError({"parameters": ["Expected a JSON object."]})
    limit = int(report_settings.MAX_PARAMETERS_BYTES)
    if len(json.dumps(parameters, default=str)) > limit:
        message = f"Parameters must be at most {limit} bytes of JSON."
        raise ValidationError({"parameters": [message]})
    unknown = template_variables.find_unknown(parameters)
    if unknown:
        raise ValidationError(
            {
                "parameters": [
                    f"Unknown template variable(s): {', '.join(unknown)}. "
                    f"Known variables: {', '.join(template_variables.VARIABLES)}."
                ]
            }
        )
    try:
        tz = schedule_times.get_zone(schedule_times.validate_timezone(tz_name))
    except ValueError as exc:
        raise ValidationError({"timezone": [str(exc)]}) from exc
    sample = template_variables.sample_render(parameters, tz)
    try:
        generator_class.clean_parameters(sample, {"user": user})
    except ValidationError as exc:
        raise ValidationError({"parameters": exc.detail}) from exc
    return dict(parameters)


def _clean_timing(schedule: ReportSchedule, errors: dict[str, list[str]]) -> None:
    """Check the timing fields and clear those the frequency does not use."""
    if schedule.frequency not in Frequency.values:
        errors["frequency"] = [
            f'"{schedule.frequency}" is not a frequency; use one of {", ".join(Frequency.values)}.'
        ]
    try:
        schedule_times.validate_timezone(schedule.timezone)
    except ValueError as exc:
        errors["timezone"] = [str(exc)]
    if isinstance(schedule.time_of_day, str):
        try:
            schedule.time_of_day = time.fromisoformat(schedule.time_of_day)
        except ValueError:
            errors["time_of_day"] = ["Give a time of day as HH:MM."]
    if not isinstance(schedule.time_of_day, time):
        errors.setdefault("time_of_day", ["Give a time of day as HH:MM."])
    else:
        schedule.time_of_day = schedule.time_of_day.replace(microsecond=0, tzinfo=None)

    if schedule.frequency == Frequency.WEEKLY:
        if schedule.weekday is None:
            schedule.weekday = schedule_times.DEFAULT_WEEKDAY
        if schedule.weekday not in range(7):
            errors["weekday"] = ["Give a weekday from 0 (Monday) to 6 (Sunday)."]
    else:
        schedule.weekday = None
    if schedule.frequency == Frequency.MONTHLY:
        if schedule.day_of_month is None:
            schedule.day_of_month = schedule_times.DEFAULT_DAY_OF_MONTH
        if schedule.day_of_month not in range(1, 32):
            errors["day_of_month"] = [
                "Give a day of the month from 1 to 31 (past a month's end: its last day)."
            ]
    else:
        schedule.day_of_month = None
    if schedule.frequency == Frequency.CUSTOM:
        if not schedule.cron_expression:
            errors["cron_expression"] = [
                'A "custom" schedule needs a cron expression, such as "0 8 * * 1-5".'
            ]
        else:
            try:
                schedule.cron_expression = schedule_times.validate_cron(schedule.cron_expression)
            except ValueError as exc:
                errors["cron_expression"] = [str(exc)]
    else:
        schedule.cron_expression = ""


def _clean_delivery(schedule: ReportSchedule, errors: dict[str, list[str]]) -> None:
    """Check priority, e-mail recipients and the webhook URL."""
    if schedule.priority not in Report.Priority.values:
        errors["priority"] = [f"Use one of {', '.join(Report.Priority.values)}."]
    recipients = schedule.email_recipients
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        errors["email_recipients"] = ["Give a list of e-mail addresses."]
    else:
        # Duplicates (case-insensitive) dropped before counting, as the API does.
        unique: dict[str, str] = {}
        for address in recipients:
            unique.setdefault(address.lower(), address)
        recipients = schedule.email_recipients = list(unique.values())
        limit = int(report_settings.MAX_EMAIL_RECIPIENTS)
        bad = []
        for address in recipients:
            try:
                validate_email(address)
            except DjangoValidationError:
                bad.append(address)
        if bad:
            errors["email_recipients"] = [f"Not valid e-mail addresses: {', '.join(bad)}."]
        elif len(recipients) > limit:
            errors["email_recipients"] = [f"At most {limit} recipients are allowed."]
        elif schedule.send_email and not recipients:
            errors["email_recipients"] = ["Give at least one recipient when send_email is true."]
    if schedule.webhook_url:
        from .delivery import validate_webhook_url

        try:
            URLValidator(schemes=["http", "https"])(schedule.webhook_url)
            # Literal loopback, private or metadata targets are refused here;
            # host names are resolved and checked again at send time.
            validate_webhook_url(schedule.webhook_url, resolve=False)
        except DjangoValidationError:
            errors["webhook_url"] = ["Enter a valid http:// or https:// URL."]
        except ValueError as exc:
            errors["webhook_url"] = [str(exc)]


def _validate(schedule: ReportSchedule, *, check_parameters: bool) -> None:
    errors: dict[str, Any] = {}
    _clean_timing(schedule, errors)
    _clean_delivery(schedule, errors)
    if check_parameters and "timezone" not in errors:
        try:
            schedule.parameters = validate_parameters(
                schedule.report_type, schedule.parameters, schedule.timezone, schedule.owner
            )
        except ValidationError as exc:
            detail = exc.detail
            errors.update(detail if isinstance(detail, dict) else {"parameters": detail})
    if schedule.report_type in registry and "report_type" not in errors:
        try:
            schedule.format = services.resolve_format(schedule.report_type, schedule.format or None)
        except ValidationError as exc:
            errors.update(exc.detail if isinstance(exc.detail, dict) else {"format": exc.detail})
    if not schedule.title and schedule.report_type in registry:
        schedule.title = str(registry.get(schedule.report_type).get_label())[:255]
    if errors:
        raise ValidationError(errors)


def _next_run(schedule: ReportSchedule, now: datetime) -> datetime | None:
    """The first run strictly after ``now``, or None for a disabled schedule."""
    if not schedule.enabled:
        return None
    return schedule_times.next_run_after(schedule, now)


def _now(now: datetime | None) -> datetime:
    """``now`` (an aware datetime, for tests and replays) or the current time."""
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be an aware datetime.")
    return now


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown or read-only schedule field(s): {', '.join(unknown)}.")


# -- create, update, enable ----------------------------------------------------
def create_schedule(*, owner: Any, now: datetime | None = None, **fields: Any) -> ReportSchedule:
    """Validate and save a schedule of ``owner``, with its first ``next_run_at`` after ``now``.

    Weekly schedules default to Monday, monthly ones to the 1st; fields a
    frequency does not use are cleared. A webhook URL gets a generated secret.
    Raises DRF ``ValidationError`` with field errors.
    """
    _check_fields(fields)
    now = _now(now)
    schedule = ReportSchedule(owner=owner, **fields)
    _validate(schedule, check_parameters=True)
    if schedule.webhook_url and not schedule.webhook_secret:
        schedule.webhook_secret = _new_webhook_secret()
    schedule.next_run_at = _next_run(schedule, now)
    schedule.save()
    return schedule


def update_schedule(
    schedule: ReportSchedule, *, now: datetime | None = None, **fields: Any
) -> ReportSchedule:
    """Change some fields of ``schedule``; ``next_run_at`` is recomputed when timing changes.

    Parameters are validated again when they, the report type or the time zone
    change. On a ``ValidationError`` the instance is left as it was.
    """
    _check_fields(fields)
    now = _now(now)
    names = sorted(EDITABLE_FIELDS | {"webhook_secret", "next_run_at"})
    before = {name: getattr(schedule, name) for name in names}
    try:
        for name, value in fields.items():
            setattr(schedule, name, value)
        _validate(schedule, check_parameters=bool(PARAMETER_FIELDS & set(fields)))
        if schedule.webhook_url and not schedule.webhook_secret:
            schedule.webhook_secret = _new_webhook_secret()
        timing_changed = any(before[n] != getattr(schedule, n) for n in TIMING_FIELDS)
        if timing_changed or before["enabled"] != schedule.enabled:
            schedule.next_run_at = _next_run(schedule, now)
    except (ValidationError, ValueError):
        for name, value in before.items():
            setattr(schedule, name, value)
        raise
    changed = [name for name in names if before[name] != getattr(schedule, name)]
    if changed:
        # Only the changed columns: a tick moving next_run_at meanwhile is kept.
        schedule.save(update_fields=[*changed, "updated_at"])
    return schedule


def set_enabled(
    schedule: ReportSchedule, enabled: bool, *, now: datetime | None = None
) -> ReportSchedule:
    """Enable or disable ``schedule`` and return it refreshed.

    Enabling computes the next run from now, so the runs missed while the
    schedule was disabled never fire; disabling clears ``next_run_at``.
    """
    now = _now(now)
    next_run_at = None
    if enabled:
        try:
            next_run_at = schedule_times.next_run_after(schedule, now)
        except ValueError as exc:
            raise ValidationError([f"The schedule cannot be enabled: {exc}"]) from exc
    ReportSchedule.objects.filter(pk=schedule.pk, enabled=not enabled).update(
        enabled=enabled, next_run_at=next_run_at, updated_at=now
    )
    schedule.refresh_from_db()
    return schedule


# -- running -------------------------------------------------------------------------
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
    rendered = template_variables.render(
        schedule.parameters or {},
        now=now,
        tz=schedule.timezone,
        last_success_at=_last_success_at(schedule),
    )
    unknown = template_variables.find_unknown(rendered)
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
    from . import delivery

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
    error = ""
    parameters: dict[str, Any] = {}
    try:
        parameters = rendered_parameters(schedule, now)
    except Exception as exc:
        # Whatever a generator's serializer raises fails this run, recorded
        # and told to the owner, never the whole tick.
        if not isinstance(exc, RUN_ERRORS):
            logger.exception("Parameters of schedule %s raised", schedule.pk)
        error = describe(exc)
    try:
        with transaction.atomic():
            execution = ScheduleExecution.objects.create(
                schedule=schedule,
                due_at=due_at,
                trigger=trigger,
                status=ExecutionStatus.FAILED if error else ExecutionStatus.RUNNING,
                started_at=now,
                finished_at=now if error else None,
                error=error[:MAX_ERROR_LENGTH],
                **(_failed_statuses(schedule) if error else _delivery_statuses(schedule)),
            )
    except IntegrityError:
        logger.info("Schedule %s already ran for %s; skipping.", schedule.pk, due_at)
        return None
    if error:
        logger.warning("Scheduled run %s of %s failed: %s", execution.pk, schedule.pk, error)
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
        logger.exception("Could not request the report of schedule %s", schedule.pk)
        execution.status = ExecutionStatus.FAILED
        execution.finished_at = now
        execution.error = describe(exc)
        statuses = _failed_statuses(schedule)
        for name, value in statuses.items():
            setattr(execution, name, value)
        execution.save(update_fields=["status", "finished_at", "error", *statuses])
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
    now = _now(now)
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
    # A refused dispatch fails the report on commit, and with it the execution.
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


def _run_due(schedule: ReportSchedule, now: datetime) -> ScheduleExecution | None:
    """Record the latest missed run of a claimed schedule and move it to its next run."""
    first_due = schedule.next_run_at
    assert first_due is not None  # the claim's filter
    try:
        latest = schedule_times.previous_run_at_or_before(schedule, now)
        next_run_at: datetime | None = schedule_times.next_run_after(schedule, now)
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
        try:
            with transaction.atomic():
                execution = ScheduleExecution.objects.create(
                    schedule=schedule,
                    due_at=due_at,
                    status=ExecutionStatus.FAILED,
                    started_at=now,
                    finished_at=now,
                    error=error,
                    **_failed_statuses(schedule),
                )
        except IntegrityError:
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
    now = _now(now)
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


def _new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
