"""Webhooks: a signed JSON POST when a report completes, fails or is cancelled.

Messages follow the Standard Webhooks specification (standardwebhooks.com):

* headers ``webhook-id`` (the same across retries of one message, so receivers
  can drop duplicates), ``webhook-timestamp`` (unix seconds of the attempt) and
  ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"));
* a secret ``whsec_<base64>`` is used as its decoded bytes, as the spec's
  libraries do; any other secret as its UTF-8 bytes.

Scheduled reports are signed with their schedule's ``webhook_secret``. Ad-hoc
reports (``Report.webhook_url``) are signed with a secret derived for their
requester, :func:`webhook_secret_for_user`, from ``ASYNC_REPORTS["WEBHOOK_SECRET"]``
(or ``SECRET_KEY`` when that is None).

Sending happens in the ``django_async_reports.deliver_webhook`` task, one
attempt per run: ``WEBHOOK_MAX_ATTEMPTS`` attempts at most,
``WEBHOOK_RETRY_BACKOFF`` seconds before the first retry, doubled each time.
Every attempt is a :class:`~django_async_reports.models.WebhookDelivery` row.
A 2xx answer is a success; 408, 429, 5xx, timeouts and connection errors are
retried; redirects (not followed) and other answers fail for good (the POST
and that verdict are :mod:`.http`'s). A scheduled report's webhook is claimed on its
execution's ``webhook_status``, like its e-mail on ``email_status``
(:meth:`~django_async_reports.models.ScheduleExecutionQuerySet.claim_channel`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils.crypto import salted_hmac

from .. import broker_limits, events, routing
from .._version import __version__
from ..conf import report_settings
from ..downloads import download_url
from ..exceptions import MAX_ERROR_LENGTH
from ..models import Report, ScheduleExecution, WebhookDelivery
from .http import HTTPResult, send
from .policy import is_active_account

logger = logging.getLogger(__name__)

Delivery = ScheduleExecution.Delivery
Status = Report.Status
# The outcomes as plain strings (django-stubs types TextChoices members as tuples).
SENT, SKIPPED, FAILED = str(Delivery.SENT), str(Delivery.SKIPPED), str(Delivery.FAILED)
SENDING, PENDING = str(Delivery.SENDING), str(Delivery.PENDING)
# Where an attempt's outcome may still be recorded: a success over anything else, ...
NOT_SENT = tuple(str(value) for value in Delivery.values if value != SENT)
# ... a failure (or a skip) only over a webhook not settled yet.
UNSENT = (*ScheduleExecution.CLAIMABLE_DELIVERY, SENDING)

EVENTS = {
    str(Status.COMPLETED): "report.completed",
    str(Status.FAILED): "report.failed",
    str(Status.CANCELLED): "report.cancelled",
}
USER_AGENT = f"django-async-reports-webhooks/{__version__}"
# Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER = 3600
_MESSAGE_NAMESPACE = uuid.UUID("5f0d3c9e-4a53-4b0c-9d1e-2a6b1f3c8e71")
_SECRET_SALT = "django_async_reports.delivery.webhooks"


# -- secrets and signatures -------------------------------------------------------
def webhook_secret_for_user(user: Any) -> str:
    """The secret ad-hoc reports of ``user`` (a user or its primary key) are signed with.

    Derived from ``ASYNC_REPORTS["WEBHOOK_SECRET"]`` (or ``SECRET_KEY``) so that
    no secret is stored, and different per user so one user's secret never
    verifies another's webhooks. Show it to the user, or compute it in the
    receiver. Changing the key (or ``SECRET_KEY`` while ``WEBHOOK_SECRET`` is
    None) changes every derived secret.
    """
    user_id = getattr(user, "pk", user)
    key = report_settings.WEBHOOK_SECRET or settings.SECRET_KEY
    digest = salted_hmac(_SECRET_SALT, f"user:{user_id}", secret=key, algorithm="sha256").digest()
    return "whsec_" + base64.b64encode(digest).decode("ascii")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_`` + base64 decoded, any other text as UTF-8."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


# -- what to send where -------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str


def event_for(report: Report) -> str | None:
    """``report.completed`` / ``report.failed`` / ``report.cancelled``; None while active."""
    return EVENTS.get(report.status)


def endpoint_for(report: Report, execution: ScheduleExecution | None) -> Endpoint | None:
    """The URL and secret of a report's webhook: its schedule's, or its own; None if unset."""
    if execution is not None:
        schedule = execution.schedule
        if not schedule.webhook_url:
            return None
        secret = schedule.webhook_secret or webhook_secret_for_user(schedule.owner_id)
        return Endpoint(schedule.webhook_url, secret)
    if not report.webhook_url:
        return None
    return Endpoint(report.webhook_url, webhook_secret_for_user(report.user_id))


def message_id_for(report: Report, event: str) -> str:
    """A message id stable for one outcome of a report (a retried report gets a new one)."""
    finished = report.completed_at.isoformat() if report.completed_at else ""
    return "msg_" + uuid.uuid5(_MESSAGE_NAMESPACE, f"{report.pk}:{event}:{finished}").hex


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


def build_payload(
    report: Report, event: str, execution: ScheduleExecution | None = None
) -> dict[str, Any]:
    """The JSON document POSTed: ``{"type", "timestamp", "data"}``.

    ``timestamp`` is when the report finished, so every attempt sends the same body.
    """
    result = report.result_data or {}
    completed = report.status == Status.COMPLETED
    data: dict[str, Any] = {
        "report_id": str(report.pk),
        "title": report.title,
        "report_type": report.report_type,
        "status": report.status,
        "row_count": result.get("row_count"),
        "duration_seconds": report.duration_seconds,
        "file_size": result.get("file_size"),
        "checksum": result.get("checksum"),
        "download_url": download_url(report) if completed else None,
        "error": report.error_message or None,
        "created_at": _iso(report.created_at),
        "completed_at": _iso(report.completed_at),
        "expires_at": _iso(report.expires_at),
        "schedule_id": None,
        "execution_id": None,
        "due_at": None,
    }
    if execution is not None:
        data.update(
            schedule_id=str(execution.schedule_id),
            execution_id=execution.pk,
            due_at=_iso(execution.due_at),
        )
    return {
        "type": event,
        "timestamp": _iso(report.completed_at or report.updated_at),
        "data": data,
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(
        payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def retry_countdown(attempt: int, at_least: float = 0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): backoff, doubled.

    ``at_least`` is the receiver's ``Retry-After``. Either is capped under the
    broker's consumer_timeout: the worker holds a delayed message unacknowledged.
    """
    backoff = float(report_settings.WEBHOOK_RETRY_BACKOFF) * 2 ** max(0, attempt - 1)
    wait = max(backoff, min(at_least, MAX_RETRY_AFTER))
    return broker_limits.cap_countdown(wait, report_settings.task_time_limit)


def max_attempts() -> int:
    return max(1, int(report_settings.WEBHOOK_MAX_ATTEMPTS))


def execution_for(report: Report) -> ScheduleExecution | None:
    return (
        ScheduleExecution.objects.select_related("schedule", "schedule__owner")
        .filter(report=report)
        .first()
    )


# -- the execution's webhook_status -----------------------------------------------------
def _move(execution: ScheduleExecution, from_: tuple[str, ...], to: str) -> bool:
    return ScheduleExecution.objects.claim_channel("webhook", pk=execution.pk, from_=from_, to=to)


def _settle(execution: ScheduleExecution | None, outcome: str) -> None:
    """Record an attempt's outcome: ``sent`` whatever came before, or failed / skipped once."""
    if execution is None:
        return
    if outcome == "sent":
        _move(execution, NOT_SENT, SENT)
    elif outcome in ("failed", "skipped"):
        _move(execution, UNSENT, FAILED if outcome == "failed" else SKIPPED)


def give_up(report_id: Any) -> None:
    """Mark a scheduled report's webhook failed after the task itself kept failing."""
    ScheduleExecution.objects.claim_channel(
        "webhook", report_id=report_id, from_=ScheduleExecution.UNSETTLED_DELIVERY, to=FAILED
    )


# -- enqueueing (called by deliver) ---------------------------------------------------
def skip(execution: ScheduleExecution) -> bool:
    """Record that the execution's webhook was skipped (an empty report); False if settled."""
    if not execution.schedule.webhook_url:
        return False
    return _move(execution, ScheduleExecution.CLAIMABLE_DELIVERY, SKIPPED)


def enqueue(
    report: Report, execution: ScheduleExecution | None = None, *, takeover: bool = False
) -> str | None:
    """Queue the first attempt of the report's webhook; returns the message id, or None.

    For a scheduled report the execution's ``webhook_status`` is claimed
    first (pending / not requested -> sending), so the message is queued once
    per execution. Ad-hoc reports rely on the caller's notification lease,
    and on the task dropping a message id already being delivered. If the
    broker refuses the message the claim is given back and the error raised.
    ``takeover`` (the notification's lease taken over from a run that died)
    may claim a webhook left ``sending``: its message id is the same, so a
    message queued twice is delivered once.
    """
    event = event_for(report)
    if event is None or endpoint_for(report, execution) is None:
        return None
    claimable = ScheduleExecution.CLAIMABLE_DELIVERY + ((SENDING,) if takeover else ())
    if execution is not None and not _move(execution, claimable, SENDING):
        return None
    message_id = message_id_for(report, event)

    def publish() -> None:
        try:
            routing.send_task(
                routing.DELIVER_WEBHOOK,
                [str(report.pk), event, message_id, 1],
                priority=report.priority,
            )
        except Exception:
            if execution is not None:
                _move(execution, (SENDING,), PENDING)  # the claim given back
            raise

    transaction.on_commit(publish)
    return message_id


# -- one attempt (the task's body) -------------------------------------------------
@dataclass
class AttemptOutcome:
    """What an attempt came to; ``retry_in`` is set when the task should try again."""

    outcome: str  # "sent", "retry", "failed" (for good) or "skipped"
    attempt: int
    status_code: int | None = None
    error: str = ""
    retry_in: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _claim_attempt(
    report: Report,
    execution: ScheduleExecution | None,
    event: str,
    url: str,
    message_id: str,
    attempt: int,
    *,
    redelivered: bool,
) -> WebhookDelivery | None:
    """Record attempt ``attempt`` of ``message_id`` before sending it; None when not ours.

    The report row is locked meanwhile, so two copies of one message (queued
    twice by a retried notification) never both send: the later one finds the
    attempt recorded and stops. A redelivered message (its worker died while
    sending) takes over an attempt that never got an outcome.
    """
    with transaction.atomic():
        Report.objects.select_for_update().filter(pk=report.pk).first()
        rows = WebhookDelivery.objects.filter(report=report, message_id=message_id)
        if rows.filter(succeeded=True).exists() or rows.filter(attempt__gt=attempt).exists():
            return None
        existing = rows.filter(attempt=attempt).first()
        if existing is not None:
            in_flight = existing.duration_ms is None
            return existing if (redelivered and in_flight) else None
        return WebhookDelivery.objects.create(
            report=report,
            execution=execution,
            event=event,
            url=url,
            message_id=message_id,
            attempt=attempt,
        )


def attempt_delivery(
    report_id: Any, event: str, message_id: str, attempt: int, *, redelivered: bool = False
) -> AttemptOutcome:
    """Make attempt number ``attempt`` of a webhook message and record it.

    Returns the outcome; its ``retry_in`` tells the task when to try again.
    The execution's ``webhook_status`` becomes ``sent`` or ``failed`` once settled.
    """
    report = Report.objects.select_related("user").filter(pk=report_id).first()
    if report is None:
        return AttemptOutcome("skipped", attempt, error="the report no longer exists")
    execution = execution_for(report)
    owner = execution.schedule.owner if execution is not None else report.user
    if not is_active_account(owner):  # deactivated since the webhook was queued
        _settle(execution, "skipped")
        return AttemptOutcome("skipped", attempt, error="the owner's account is inactive")
    endpoint = endpoint_for(report, execution)
    if endpoint is None:
        _settle(execution, "skipped")
        return AttemptOutcome("skipped", attempt, error="no webhook URL is set any more")
    record = _claim_attempt(
        report, execution, event, endpoint.url, message_id, attempt, redelivered=redelivered
    )
    if record is None:
        return AttemptOutcome("skipped", attempt, error="delivered or being delivered already")

    body = encode(build_payload(report, event, execution))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, message_id, timestamp, body),
    }
    started = time.monotonic()
    result: HTTPResult | None = None
    try:
        outcome, error, result = send(
            endpoint.url, body, headers, float(report_settings.WEBHOOK_TIMEOUT)
        )
    except Exception as exc:  # record the attempt whatever happened
        logger.exception("Webhook %s attempt %s raised", message_id, attempt)
        outcome, error = "retry", f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)

    retry_in: float | None = None
    if outcome == "retry":
        if attempt >= max_attempts():
            outcome = "failed"
            error = f"{error} (gave up after {attempt} attempts)"
        else:
            retry_after = result.retry_after if result is not None else None
            retry_in = retry_countdown(attempt, at_least=float(retry_after or 0))
    WebhookDelivery.objects.filter(pk=record.pk).update(
        status_code=result.status if result is not None else None,
        succeeded=outcome == "sent",
        error=error[:MAX_ERROR_LENGTH],
        duration_ms=duration_ms,
    )
    _settle(execution, outcome)
    log = {"sent": logger.info, "retry": logger.warning}.get(outcome, logger.error)
    log(
        "Webhook %s (%s of report %s) attempt %s to %s: %s%s",
        message_id,
        event,
        report.pk,
        attempt,
        endpoint.url,
        outcome,
        f" ({error})" if error else "",
    )
    if outcome == "sent":
        extra: dict[str, Any] = {"webhook_event": event, "delivery_attempt": attempt}
        extra["status_code"] = result.status if result is not None else None
        events.log_event(events.DELIVERED, report, channel="webhook", **extra)
    return AttemptOutcome(
        outcome,
        attempt,
        status_code=result.status if result is not None else None,
        error=error,
        retry_in=retry_in,
    )
