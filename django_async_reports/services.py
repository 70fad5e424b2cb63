"""The one code path for requesting, running, cancelling and retrying reports.

The REST API, the admin, management commands and schedules all call these
functions. Rules kept here:

* a task is dispatched only after the row is committed (``on_commit``), with
  a task id assigned beforehand and stored on the row;
* every status change is a conditional ``UPDATE ... WHERE status IN (...)``,
  so a redelivered or retried task never runs a finished or cancelled report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.core.files import File
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from . import postprocess, progress, routing, signals
from .conf import report_settings
from .exceptions import (
    MAX_ERROR_LENGTH,
    InvalidReportState,
    ReportCancelled,
    ReportDispatchError,
)
from .models import Report
from .registry import registry
from .storage import delete_report_files, get_report_storage, report_file_name, report_storage
from .writers import ReportContext, get_writer_class, writer_classes

logger = logging.getLogger(__name__)

Status = Report.Status
Outcome = Literal["created", "reused", "joined"]


# -- requesting ----------------------------------------------------------------
def validate_request(
    report_type: str, parameters: Mapping[str, Any] | None, *, user: Any = None
) -> dict[str, Any]:
    """Return normalised parameters or raise DRF ``ValidationError`` / ``NotRegistered``."""
    generator_class = registry.get(report_type)
    return generator_class.clean_parameters(parameters or {}, {"user": user})


def resolve_format(report_type: str, fmt: str | None) -> str:
    """The format a request gets: ``fmt``, else DEFAULT_FORMAT, else the type's first.

    Raises DRF ``ValidationError`` (on ``format``) when the type does not offer
    it, or the package its writer needs is not installed.
    """
    from rest_framework.exceptions import ValidationError

    generator_class = registry.get(report_type)
    offered = generator_class.get_formats()
    if not offered:
        extras = sorted({writer_classes()[f].extra for f in generator_class.formats or ()})
        raise ValidationError(
            {
                "format": [
                    f"No format of {report_type} reports is installed here: "
                    f'pip install "django-async-reporting[{",".join(extras)}]".'
                ]
            },
            code="invalid_choice",
        )
    if not fmt:
        default = report_settings.DEFAULT_FORMAT
        return str(default) if default in offered else offered[0]
    if fmt in offered:
        return fmt
    writer_class = writer_classes().get(fmt)
    declared = generator_class.formats
    if (
        writer_class is not None
        and not writer_class.is_available()
        and (declared is None or fmt in declared)
    ):
        message = (
            f'The "{fmt}" format needs the optional "{writer_class.extra}" extra: '
            f'pip install "django-async-reporting[{writer_class.extra}]".'
        )
    else:
        message = (
            f'"{fmt}" is not a format of {report_type} reports. '
            f"Formats: {', '.join(offered) or 'none'}."
        )
    raise ValidationError({"format": [message]}, code="invalid_choice")


def report_fingerprint(
    report_type: str, fmt: str, compress: bool, parameters: Mapping[str, Any]
) -> str:
    """sha256 of what makes two requests ask the same question (the user aside).

    ``parameters`` are the generator's normalised ones, so ``{"b":1,"a":2}``
    and ``{"a":2,"b":1}``, or a date given two ways, hash the same.
    """
    canonical = json.dumps(
        [report_type, fmt, bool(compress), parameters],
        sort_keys=True,
        separators=(",", ":"),
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_report(
    *,
    user: Any,
    report_type: str,
    parameters: Mapping[str, Any] | None = None,
    title: str = "",
    priority: str = "normal",
    send_email: bool = False,
    webhook_url: str = "",
    format: str | None = None,
    compress: bool = False,
    validated: bool = False,
) -> Report:
    """Create a pending report and queue its generation once the row is committed.

    ``parameters`` are validated by the generator's ``parameters_class`` unless
    ``validated`` says the caller already did (the API serializer does).
    ``format`` defaults to ``DEFAULT_FORMAT``. Always creates a new report:
    :func:`request_or_reuse_report` is the variant that reuses identical ones.
    """
    report, dispatch_errors = _create_report(
        user=user,
        report_type=report_type,
        parameters=parameters,
        title=title,
        priority=priority,
        send_email=send_email,
        webhook_url=webhook_url,
        format=format,
        compress=compress,
        validated=validated,
    )
    _raise_dispatch_error(report, dispatch_errors)
    signals.report_requested.send(sender=Report, report=report)
    return report


def _create_report(
    *,
    user: Any,
    report_type: str,
    parameters: Mapping[str, Any] | None,
    title: str,
    priority: str,
    send_email: bool,
    webhook_url: str,
    format: str | None,
    compress: bool,
    validated: bool,
) -> tuple[Report, list[Exception]]:
    """Save the row and arrange its dispatch on commit; the list fills with broker errors."""
    generator_class = registry.get(report_type)
    if not validated:
        parameters = validate_request(report_type, parameters, user=user)
    if priority not in Report.Priority.values:
        raise ValueError(f"Unknown priority {priority!r}.")
    fmt = resolve_format(report_type, format)
    parameters = dict(parameters or {})
    with transaction.atomic():
        report = Report.objects.create(
            user=user,
            report_type=report_type,
            title=(title or generator_class.get_label())[:255],
            parameters=parameters,
            priority=priority,
            send_email=send_email,
            webhook_url=webhook_url,
            format=fmt,
            compress=bool(compress),
            fingerprint=report_fingerprint(report_type, fmt, bool(compress), parameters),
            celery_task_id=str(uuid.uuid4()),
            progress_message="Queued",
        )
        dispatch_errors = _dispatch_on_commit(report)
    return report, dispatch_errors


@dataclass(frozen=True)
class ReportRequestResult:
    """The report a request got, and how: ``created``, ``reused`` (completed) or ``joined``."""

    report: Report
    outcome: Outcome


def request_or_reuse_report(*, force: bool = False, **kwargs: Any) -> ReportRequestResult:
    """Like :func:`request_report`, but an identical recent request's report is returned.

    Identical means the same user, report_type, format, compression and
    normalised parameters. A completed, unexpired report finished within the
    type's reuse window is ``reused``; one still pending or processing is
    ``joined``. ``force``, a reuse window of 0, or a request asking for
    delivery (e-mail, webhook: a reused report would never deliver it) always
    creates a new report. Two identical requests at the same moment are
    serialised on PostgreSQL (an advisory lock), so they share one report.
    """
    user = kwargs["user"]
    report_type = kwargs["report_type"]
    generator_class = registry.get(report_type)
    window = generator_class.get_reuse_window_seconds()
    if force or window <= 0 or kwargs.get("send_email") or kwargs.get("webhook_url"):
        return ReportRequestResult(request_report(**kwargs), "created")
    if not kwargs.get("validated"):
        kwargs["parameters"] = validate_request(report_type, kwargs.get("parameters"), user=user)
        kwargs["validated"] = True
    fmt = resolve_format(report_type, kwargs.get("format"))
    kwargs["format"] = fmt
    fingerprint = report_fingerprint(
        report_type, fmt, bool(kwargs.get("compress")), dict(kwargs.get("parameters") or {})
    )
    defaults = {"title": "", "priority": "normal", "send_email": False, "webhook_url": ""}
    with transaction.atomic():
        _lock_fingerprint(user, fingerprint)
        found = find_reusable_report(
            user, fingerprint, window, margin_seconds=_expiry_margin(generator_class)
        )
        if found is not None:
            outcome: Outcome = "joined" if found.is_active else "reused"
            return ReportRequestResult(found, outcome)
        report, dispatch_errors = _create_report(**{"compress": False, **defaults, **kwargs})
    _raise_dispatch_error(report, dispatch_errors)
    signals.report_requested.send(sender=Report, report=report)
    return ReportRequestResult(report, "created")


def find_reusable_report(
    user: Any, fingerprint: str, window_seconds: int, *, margin_seconds: int = 60
) -> Report | None:
    """The newest report of ``user`` with ``fingerprint`` still worth returning, if any.

    A running one is joined only while it could still be running: one older
    than every attempt's time limit and retry delay put together is stuck (its
    message lost), and a new report is made instead. A completed one must not
    expire within ``margin_seconds``, or the client would meet a 410 at once.
    """
    now = timezone.now()
    candidates = Report.objects.filter(user=user, fingerprint=fingerprint).order_by("-created_at")
    active = candidates.filter(
        status__in=Report.ACTIVE_STATUSES, created_at__gte=now - _stale_after()
    ).first()
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


def _expiry_margin(generator_class: Any) -> int:
    """Time a reused report must have left: a minute, or a tenth of a shorter retention."""
    return min(60, generator_class.get_retention_seconds() // 10)


def _stale_after() -> timedelta:
    """How old an active report can get before joining it would wait forever."""
    attempts = int(report_settings.MAX_RETRIES) + 1
    per_attempt = report_settings.time_limit + int(report_settings.RETRY_COUNTDOWN)
    return timedelta(seconds=attempts * per_attempt + 600)


def _lock_fingerprint(user: Any, fingerprint: str) -> None:
    """Serialise identical requests until the transaction ends (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    key = int(hashlib.sha256(f"{user.pk}:{fingerprint}".encode()).hexdigest()[:15], 16)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def dispatch(report: Report) -> None:
    """Send the generate -> post-process -> notify chain for ``report``."""
    generator_class = registry.get(report.report_type)
    soft_limit = generator_class.soft_time_limit or report_settings.SOFT_TIME_LIMIT
    hard_limit = max(report_settings.time_limit, soft_limit + 60)
    args = [str(report.pk)]
    routing.send_chain(
        [
            (
                routing.GENERATE_REPORT,
                args,
                {
                    "task_id": report.celery_task_id,
                    "soft_time_limit": soft_limit,
                    "time_limit": hard_limit,
                },
            ),
            (routing.POST_PROCESS_REPORT, args, {}),
            (routing.SEND_REPORT_NOTIFICATION, args, {}),
        ],
        priority=report.priority,
    )


def _dispatch_on_commit(report: Report) -> list[Exception]:
    """Dispatch once committed; a broker error fails the report instead of orphaning it.

    Returns the list the errors are appended to (filled when the commit happens,
    which is at once unless an outer transaction is open).
    """
    errors: list[Exception] = []

    def send() -> None:
        try:
            dispatch(report)
        except Exception as exc:
            logger.exception("Could not queue report %s", report.pk)
            fail_report(report.pk, f"Could not queue the report: {exc}")
            report.refresh_from_db()
            errors.append(exc)

    transaction.on_commit(send)
    return errors


def _raise_dispatch_error(report: Report, errors: list[Exception]) -> None:
    if errors:
        raise ReportDispatchError(
            f"Report {report.pk} was saved but could not be queued: {errors[0]}"
        ) from errors[0]


def regenerate_report(report: Report, *, user: Any = None) -> Report:
    """A new report with the same type, title, parameters, priority and delivery choices."""
    return request_report(
        user=user or report.user,
        report_type=report.report_type,
        parameters=report.parameters,
        title=report.title,
        priority=report.priority,
        send_email=report.send_email,
        webhook_url=report.webhook_url,
        format=report.format,
        compress=report.compress,
    )


def retry_report(report: Report) -> Report:
    """Queue a failed or cancelled report again, on the same row with a new task id."""
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        updated = Report.objects.filter(
            pk=report.pk, status__in=[Status.FAILED, Status.CANCELLED]
        ).update(
            status=Status.PENDING,
            celery_task_id=task_id,
            progress=0,
            progress_message="Queued",
            error_message="",
            retry_count=0,
            started_at=None,
            completed_at=None,
            expires_at=None,  # set again when this run finishes
            notified_at=None,
            updated_at=timezone.now(),
        )
        if not updated:
            report.refresh_from_db()
            raise InvalidReportState(
                f"Only failed or cancelled reports can be retried; this one is {report.status}."
            )
        report.refresh_from_db()
        progress.delete_cache(report.pk)
        dispatch_errors = _dispatch_on_commit(report)
    _raise_dispatch_error(report, dispatch_errors)
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
    updated = Report.objects.filter(pk=report.pk, status__in=Report.ACTIVE_STATUSES).update(
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
    from .models import ScheduleExecution

    ScheduleExecution.objects.record_report_outcome(report)
    progress.write_cache(report.pk, status=Status.CANCELLED, message="Cancelled")
    _discard_files(report)
    signals.report_cancelled.send(sender=Report, report=report)
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
        transaction.on_commit(lambda: _discard_files(report))
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


# -- running (called by the tasks) -----------------------------------------------
def claim_report(report_id: Any, *, redelivered: bool = False) -> Report | None:
    """Move a pending report to processing; None when there is nothing to run.

    A redelivered message (its worker died mid-run) may also take over a
    report left in processing.
    """
    allowed = [Status.PENDING, Status.PROCESSING] if redelivered else [Status.PENDING]
    now = timezone.now()
    updated = Report.objects.filter(pk=report_id, status__in=allowed).update(
        status=Status.PROCESSING,
        started_at=now,
        progress_message="Starting",
        updated_at=now,
    )
    if not updated:
        return None
    report = Report.objects.select_related("user").get(pk=report_id)
    progress.write_cache(
        report.pk, status=Status.PROCESSING, progress=report.progress, message="Starting"
    )
    signals.report_started.send(sender=Report, report=report)
    return report


def _chunks(rows: Iterable[Any], size: int) -> Iterable[list[Any]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def generate(report: Report, *, task_state: Callable[[int, str], None] | None = None) -> Report:
    """Stream the generator's rows to a temporary file, then to the report storage.

    Raises :class:`ReportCancelled` when the report is cancelled meanwhile; the
    temporary file is removed and nothing is stored.
    """
    generator_class = registry.get(report.report_type)
    generator = generator_class(report=report, user=report.user)
    params = generator.get_params(report.parameters)
    tracker = progress.ProgressTracker(report.pk, generator.count(params), task_state=task_state)
    if not tracker.publish(0, "Generating"):
        raise ReportCancelled(report.pk)
    neutralize = generator.neutralize_formulas
    if neutralize is None:
        neutralize = bool(report_settings.NEUTRALIZE_FORMULAS)
    writer_class = get_writer_class(report.format or str(report_settings.DEFAULT_FORMAT))
    columns = generator.get_columns()
    context = ReportContext(
        title=report.title,
        report_type=report.report_type,
        label=str(generator_class.get_label()),
        parameters=report.parameters,
        generated_at=timezone.now(),
        charts=tuple(generator_class.charts),
    )
    with tempfile.TemporaryFile() as tmp:
        writer = writer_class(tmp, neutralize_formulas=neutralize, context=context)
        writer.write_header(columns)
        for chunk in _chunks(generator.rows(params), max(1, generator.chunk_size)):
            if tracker.rows == 0 and len(chunk[0]) != len(columns):
                raise ValueError(
                    f"{generator_class.__name__}.rows() yielded {len(chunk[0])} values "
                    f"for {len(columns)} columns."
                )
            writer.write_rows(chunk)
            if not tracker.advance(len(chunk)):
                raise ReportCancelled(report.pk)
        summary = generator.summary(params, tracker.rows)
        writer.write_summary(summary, tracker.rows)
        writer.close()
        tmp.seek(0)
        name = report_file_name(
            report.user_id, report.pk, generator.get_filename(), writer_class.extension
        )
        stored_name = report_storage.save(name, File(tmp, name=name))
    result_data: dict[str, Any] = {
        "format": writer_class.format,
        "row_count": tracker.rows,
        "columns": columns,
    }
    if summary is not None:
        result_data["summary"] = summary
    updated = Report.objects.filter(pk=report.pk, status=Status.PROCESSING).update(
        result_file=stored_name,
        result_data=result_data,
        progress=Greatest("progress", 99),
        progress_message="Finalising",
        updated_at=timezone.now(),
    )
    if not updated:
        # Cancelled or failed meanwhile. On an object store a duplicate run
        # writes the same key: never delete the file the row points at.
        current = Report.objects.filter(pk=report.pk).values_list("result_file", flat=True).first()
        if current != stored_name:
            _delete_file(stored_name)
        raise ReportCancelled(report.pk)
    progress.write_cache(report.pk, progress=99, message="Finalising")
    report.refresh_from_db()
    return report


def post_process(report_id: Any) -> Report | None:
    """Compress when asked, record size, checksum and row count, mark completed.

    The second step of the chain (see :mod:`.postprocess`). None when the
    report is not (or no longer) processing with a file: it was cancelled,
    failed, or this step already ran.
    """
    report = Report.objects.filter(pk=report_id, status=Status.PROCESSING).first()
    if report is None or not report.result_file:
        return None
    original = report.result_file.name
    if report.compress and not original.endswith(postprocess.GZIP_EXTENSION):
        stored = postprocess.compress(get_report_storage(), original)
    else:
        stored = postprocess.measure(get_report_storage(), original)
    result_data = {
        **report.result_data,
        "file_size": stored.size,
        "checksum": stored.checksum,
        "compressed": stored.name.endswith(postprocess.GZIP_EXTENSION),
    }
    if result_data["compressed"]:
        result_data["uncompressed_size"] = stored.uncompressed_size
    now = timezone.now()
    updated = Report.objects.filter(pk=report.pk, status=Status.PROCESSING).update(
        status=Status.COMPLETED,
        result_file=stored.name,
        result_data=result_data,
        error_message="",  # an earlier attempt's error no longer applies
        progress=100,
        progress_message="Completed",
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
    )
    if not updated:
        # Cancelled or failed meanwhile: nothing stored is wanted. Or a duplicate
        # run of this step (a redelivered message) completed it first: the file
        # it completed with is the report's and stays.
        kept = (
            Report.objects.filter(pk=report.pk, status=Status.COMPLETED)
            .values_list("result_file", flat=True)
            .first()
        )
        for name in {stored.name, original} - {kept}:
            _delete_file(name)
        return None
    # The report's file is the stored one: the uncompressed original, and
    # anything an interrupted attempt left in the report's folder, go.
    if stored.name != original:
        _delete_file(original)
    try:
        delete_report_files(report.user_id, report.pk, keep=stored.name)
    except Exception:
        logger.warning("Could not sweep the folder of report %s", report.pk, exc_info=True)
    progress.write_cache(report.pk, status=Status.COMPLETED, progress=100, message="Completed")
    report.refresh_from_db()
    return report


def schedule_retry(report_id: Any, error: str) -> bool:
    """Put a processing report back to pending before Celery retries it."""
    updated = Report.objects.filter(pk=report_id, status=Status.PROCESSING).update(
        status=Status.PENDING,
        retry_count=F("retry_count") + 1,
        error_message=error[:MAX_ERROR_LENGTH],
        progress_message="Retrying after an error",
        updated_at=timezone.now(),
    )
    if updated:
        progress.write_cache(report_id, status=Status.PENDING, message="Retrying after an error")
    return bool(updated)


def fail_report(report_id: Any, error: str) -> Report | None:
    """Mark an active report failed for good, remove its file, notify. None if not active."""
    now = timezone.now()
    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        return None
    updated = Report.objects.filter(pk=report_id, status__in=Report.ACTIVE_STATUSES).update(
        status=Status.FAILED,
        error_message=error[:MAX_ERROR_LENGTH],
        progress_message="Failed",
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
    )
    if not updated:
        return None
    _discard_files(report)
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
        transaction.on_commit(lambda: _queue_notification(report))
    return report


def _queue_notification(report: Report) -> None:
    try:
        routing.send_task(
            routing.SEND_REPORT_NOTIFICATION, [str(report.pk)], priority=report.priority
        )
    except Exception:
        # The broker is down too: the report is failed and says why; the
        # e-mail is what is lost, and the log says so.
        logger.exception("Could not queue the notification of failed report %s", report.pk)


def notify(report: Report) -> bool:
    """Record a schedule's outcome, deliver (e-mail, webhook), send the signal, once.

    The ``notified_at`` column is claimed with a conditional update first, so a
    retried or redelivered notification step never notifies twice. Cancelled
    reports are delivered too (a webhook, no e-mail); their signal,
    ``report_cancelled``, was sent by :func:`cancel_report`.
    """
    from .delivery import deliver

    if report.status not in Report.FINISHED_STATUSES:
        return False
    from .models import ScheduleExecution

    ScheduleExecution.objects.record_report_outcome(report)
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
        responses = signals.report_completed.send_robust(sender=Report, report=report)
    elif report.status == Status.CANCELLED:
        responses = []
    else:
        responses = signals.report_failed.send_robust(
            sender=Report, report=report, error=report.error_message
        )
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "Receiver %r of the report signal raised for report %s",
                receiver,
                report.pk,
                exc_info=response,
            )
    return True


def notify_report(report_id: Any) -> bool:
    """Third chain step: notify about a completed report."""
    report = Report.objects.select_related("user").filter(pk=report_id).first()
    if report is None:
        return False
    return notify(report)


def _discard_files(report: Report) -> None:
    """Delete a report's file and whatever else its own folder holds (a step killed
    mid-way may have left an upload the row does not point at)."""
    _delete_file(report.result_file.name)
    try:
        delete_report_files(report.user_id, report.pk)
    except Exception:  # as for one file: it must not stop a cancel or a failure
        logger.warning("Could not clean the folder of report %s", report.pk, exc_info=True)


def _delete_file(name: str | None) -> None:
    if not name:
        return
    try:
        report_storage.delete(name)
    except Exception:  # a missing file must not stop a cancel or a failure
        logger.warning("Could not delete report file %s", name, exc_info=True)
