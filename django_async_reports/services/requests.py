"""Requesting a report: validate, resolve the format, save the row, queue it, or reuse one."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from rest_framework.exceptions import ValidationError

from .. import events, signals
from ..conf import report_settings
from ..exceptions import IdempotencyKeyReused
from ..models import Report
from ..registry import registry
from ..writers import writer_classes
from . import limits, outbox, permissions
from .lifecycle import queue_on_commit
from .locks import lock_for_user
from .reuse import expiry_margin, find_reusable_report, raise_priority

Outcome = Literal["created", "reused", "joined", "replayed"]


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


@dataclass(frozen=True)
class ReportRequest:
    """A checked request: parameters normalised, priority known, format resolved."""

    user: Any
    report_type: str
    parameters: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    priority: str = "normal"
    send_email: bool = False
    webhook_url: str = ""
    format: str = "csv"
    compress: bool = False

    @property
    def fingerprint(self) -> str:
        return report_fingerprint(self.report_type, self.format, self.compress, self.parameters)

    @property
    def wants_delivery(self) -> bool:
        """An e-mail or webhook was asked for: a reused report would never deliver it."""
        return bool(self.send_email or self.webhook_url)


def build_request(
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
) -> ReportRequest:
    """Check a request as :func:`request_report` takes it; raises what it would raise."""
    generator_class = registry.get(report_type)
    permissions.check_may_run(user, report_type)
    if not validated:
        parameters = validate_request(report_type, parameters, user=user)
    if priority not in Report.Priority.values:
        raise ValueError(f"Unknown priority {priority!r}.")
    permissions.check_priority(user, priority)
    return ReportRequest(
        user=user,
        report_type=report_type,
        parameters=dict(parameters or {}),
        title=(title or generator_class.get_label())[:255],
        priority=priority,
        send_email=send_email,
        webhook_url=webhook_url,
        format=resolve_format(report_type, format),
        compress=bool(compress),
    )


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
    request = build_request(
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
    return _created(_save(request))


def _save(request: ReportRequest, *, idempotency_key: str = "") -> Report:
    """Save the row, its generation recorded as its next step, and send that once committed.

    Raises :class:`~django_async_reports.exceptions.LimitExceeded` when the user
    is at ``MAX_ACTIVE_REPORTS_PER_USER``.

    A broker that is down leaves the report pending, "Waiting for the queue",
    for the sweeper: the request itself never fails for it.
    """
    with transaction.atomic():
        limits.take_active_place(request.user)
        report = Report.objects.create(
            user=request.user,
            report_type=request.report_type,
            title=request.title,
            parameters=request.parameters,
            priority=request.priority,
            send_email=request.send_email,
            webhook_url=request.webhook_url,
            format=request.format,
            compress=request.compress,
            fingerprint=request.fingerprint,
            celery_task_id=str(uuid.uuid4()),
            progress_message="Queued",
            idempotency_key=idempotency_key,
            **outbox.due(outbox.GENERATE),
        )
        queue_on_commit(report)
    return report


def _created(report: Report) -> Report:
    events.log_event(events.REQUESTED, report)
    signals.send(signals.report_requested, Report, report=report)
    return report


@dataclass(frozen=True)
class ReportRequestResult:
    """The report a request got, and how.

    ``created``, ``reused`` (completed), ``joined`` (running) or ``replayed``
    (the one an earlier request with the same ``Idempotency-Key`` created).
    """

    report: Report
    outcome: Outcome


def request_or_reuse_report(
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
    force: bool = False,
    idempotency_key: str = "",
) -> ReportRequestResult:
    """Like :func:`request_report`, but an identical recent request's report is returned.

    Identical means the same user, report_type, format, compression and
    normalised parameters. A completed, unexpired report finished within the
    type's reuse window is ``reused``; one still pending or processing is
    ``joined`` (and takes this request's priority when it is more urgent).
    ``force``, a reuse window of 0, or a request asking for delivery (e-mail,
    webhook: a reused report would never deliver it) always creates a new
    report. Two identical requests at the same moment are serialised on
    PostgreSQL (an advisory lock), so they share one report.

    ``idempotency_key`` (the client's ``Idempotency-Key``): a request the same
    user already made with this key gets the report that request created
    (``replayed``), whatever happened since; the same key with a different
    request raises :class:`IdempotencyKeyReused`. A client retrying after a
    timeout gets no duplicate.
    """
    generator_class = registry.get(report_type)
    request = build_request(
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
    if idempotency_key:
        with transaction.atomic():
            lock_for_user(user, f"idempotency:{idempotency_key}")
            replayed = _replay(user, idempotency_key, request)
            if replayed is not None:
                return replayed
            try:
                report = _save(request, idempotency_key=idempotency_key)
            except IntegrityError:  # the same key at the same moment (no advisory lock)
                replayed = _replay(user, idempotency_key, request)
                if replayed is None:
                    raise
                return replayed
        return ReportRequestResult(_created(report), "created")
    window = generator_class.get_reuse_window_seconds()
    if force or window <= 0 or request.wants_delivery:
        return ReportRequestResult(_created(_save(request)), "created")
    with transaction.atomic():
        lock_for_user(user, request.fingerprint)
        found = find_reusable_report(
            user, request.fingerprint, window, margin_seconds=expiry_margin(generator_class)
        )
        if found is not None:
            if not found.is_active:
                return ReportRequestResult(found, "reused")
            return ReportRequestResult(raise_priority(found, request.priority), "joined")
        report = _save(request)
    return ReportRequestResult(_created(report), "created")


#: What must match for a request to replay the report an earlier one created
#: (attributes of both a ReportRequest and a Report).
_replay_identity = attrgetter(
    "report_type", "fingerprint", "title", "priority", "send_email", "webhook_url"
)


def _replay(user: Any, key: str, request: ReportRequest) -> ReportRequestResult | None:
    """The report an earlier request with ``key`` created, if any; it must be the same request."""
    earlier = Report.objects.filter(user=user, idempotency_key=key).first()
    if earlier is None:
        return None
    if _replay_identity(request) != _replay_identity(earlier):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request: "
            "use a new key for a new request."
        )
    return ReportRequestResult(earlier, "replayed")


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
