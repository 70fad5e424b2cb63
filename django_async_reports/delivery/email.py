"""E-mail delivery: the report to its requester or to a schedule's recipients, failures to owners.

Mail goes through Django's e-mail framework (``EMAIL_BACKEND``). Subject and
body come from templates a project may override (see ``TEMPLATES`` below):
``<name>_subject.txt``, ``<name>_body.txt`` (rendered without HTML escaping)
and, when a project adds one, ``<name>_body.html`` as an HTML alternative.

A completed report's mail carries its file, or links it and says why not
(:mod:`.attachments`): a mail never lacks its report without saying so. A
scheduled run's e-mail is sent at most once, claimed on the execution's
``email_status`` (:meth:`ScheduleExecutionQuerySet.claim_channel
<django_async_reports.models.ScheduleExecutionQuerySet.claim_channel>`).
"""

from __future__ import annotations

import logging
import smtplib
import zoneinfo
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, TemplateDoesNotExist
from django.template import Template as DjangoTemplate
from django.template.loader import get_template
from django.utils import timezone

from ..conf import report_settings
from ..downloads import download_url
from ..models import Report, ScheduleExecution
from .attachments import ReportFile, file_link, report_file
from .policy import allowed_recipients, is_allowed_recipient

if TYPE_CHECKING:
    from ..models import ReportSchedule

logger = logging.getLogger(__name__)

Delivery = ScheduleExecution.Delivery

TEMPLATE_DIR = "django_async_reports/email"
# Template name prefixes, under TEMPLATE_DIR.
TEMPLATES = {
    "report_completed": "to the requester of an ad-hoc report that completed",
    "report_failed": "to the requester of an ad-hoc report that failed",
    "schedule_completed": "to a schedule's recipients, with the report",
    "schedule_failed": "to a schedule's owner when a run failed (``report`` is None when "
    "it failed before its report existed)",
}
# The outcomes as plain strings (django-stubs types TextChoices members as tuples).
SENT, SKIPPED, FAILED = str(Delivery.SENT), str(Delivery.SKIPPED), str(Delivery.FAILED)
SENDING, PENDING = str(Delivery.SENDING), str(Delivery.PENDING)


# -- rendering and sending -----------------------------------------------------------
def render_text(template_name: str, context: dict[str, Any]) -> str:
    """Render a plain-text template without HTML escaping (a title "Q&A" stays "Q&A").

    Django templates get autoescaping turned off whatever their content; other
    engines render as configured.
    """
    template = get_template(template_name)
    inner = getattr(template, "template", None)
    if isinstance(inner, DjangoTemplate):
        return inner.render(Context(context, autoescape=False))
    return template.render(context)


def render(name: str, context: dict[str, Any]) -> tuple[str, str, str | None]:
    """Subject (one line), text body and optional HTML body of template set ``name``."""
    prefix = f"{TEMPLATE_DIR}/{name}"
    subject = " ".join(render_text(f"{prefix}_subject.txt", context).split())
    text = render_text(f"{prefix}_body.txt", context)
    try:
        html_template = get_template(f"{prefix}_body.html")
    except TemplateDoesNotExist:
        html = None
    else:
        html = html_template.render(context)
    return subject, text, html


def sender() -> str:
    return report_settings.EMAIL_FROM or settings.DEFAULT_FROM_EMAIL


def message_id(kind: str, pk: Any, outcome: Any = "") -> str:
    """A Message-ID stable per outcome of a report or execution: a resent e-mail keeps it.

    A notification is delivered at least once: should one be sent again (the
    SMTP connection dropped after DATA, the worker died before recording it,
    on another host), mail clients see the same message. ``outcome`` tells
    one outcome from the next (a report retried by an admin ends anew). The
    domain is the sender's, the same on every worker.
    """
    domain = sender().rpartition("@")[2].strip(" >") or "localhost"
    suffix = f"-{outcome}" if outcome else ""
    return f"<async-report-{kind}-{pk}{suffix}@{domain}>"


def _report_outcome(report: Report) -> str:
    """The report's status and when it ended: unique per outcome of the report."""
    ended = int(report.completed_at.timestamp()) if report.completed_at else 0
    return f"{report.status}-{ended}"


def send(
    name: str,
    context: dict[str, Any],
    recipients: Sequence[str],
    *,
    file: ReportFile | None = None,
    msgid: str | None = None,
) -> int:
    """Render template set ``name`` and send one message to ``recipients``; raises on error."""
    subject, text, html = render(name, context)
    headers = {"Auto-Submitted": "auto-generated"}
    if msgid is not None:
        headers["Message-ID"] = msgid
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=sender(),
        to=list(recipients),
        headers=headers,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    if file is not None and file.content is not None:
        message.attach(file.name, file.content, file.mimetype)
    return message.send()


def is_transient(exc: BaseException) -> bool:
    """Whether sending again later may work: a connection problem or an SMTP 4xx reply.

    SMTP 5xx replies (recipients or sender refused...) and template or
    programming errors are permanent: retrying repeats them.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return any(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, OSError)  # smtplib.SMTPException is an OSError too


def _context(report: Report, **extra: Any) -> dict[str, Any]:
    result_data = report.result_data or {}
    return {
        "report": report,
        "event": "completed" if report.status == Report.Status.COMPLETED else "failed",
        "download_url": download_url(report),
        "file_url": None,
        "file_url_expires_at": None,
        "row_count": result_data.get("row_count"),
        "duration_seconds": report.duration_seconds,
        "file_size": result_data.get("file_size"),
        "error": report.error_message,
        "base_url": report_settings.BASE_URL,
        **extra,
    }


def _completed_context(report: Report, file: ReportFile, **extra: Any) -> dict[str, Any]:
    """The context of a completed report's mail: the file, and its presigned URL if any."""
    file_url, file_url_expires_at = file_link(report, file)
    return _context(
        report, file=file, file_url=file_url, file_url_expires_at=file_url_expires_at, **extra
    )


# -- ad-hoc reports ------------------------------------------------------------------
def send_report_email(report: Report) -> int:
    """E-mail the requester (``report.user.email``) that the report completed or failed.

    A completed report's file is attached when small enough. Returns the
    number of messages sent (0 without an address or for another status);
    errors propagate.
    """
    recipient = getattr(report.user, "email", "")
    if not recipient:
        return 0
    if not is_allowed_recipient(recipient, report.user):
        logger.warning(
            "Not e-mailing report %s to %s: the recipients policy refuses the address.",
            report.pk,
            recipient,
        )
        return 0
    if report.status == Report.Status.COMPLETED:
        file = report_file(report)
        context = _completed_context(report, file)
        msgid = message_id("report", report.pk, _report_outcome(report))
        return send("report_completed", context, [recipient], file=file, msgid=msgid)
    if report.status == Report.Status.FAILED:
        msgid = message_id("report", report.pk, _report_outcome(report))
        return send("report_failed", _context(report), [recipient], msgid=msgid)
    return 0


def deliver_to_requester(report: Report) -> int:
    """The ad-hoc report's e-mail, as :func:`~django_async_reports.delivery.deliver` sends it.

    A transient error (connection, SMTP 4xx) propagates so the notification
    step retries; a permanent one (SMTP 5xx, a template error) is logged and
    dropped, since sending again would fail the same way. Returns the messages sent.
    """
    try:
        return send_report_email(report)
    except Exception as exc:
        if is_transient(exc):
            raise
        logger.exception("Could not e-mail report %s to its requester; not retrying.", report.pk)
        return 0


# -- scheduled reports ---------------------------------------------------------------
def _schedule_tz(schedule: ReportSchedule) -> Any:
    try:
        return zoneinfo.ZoneInfo(schedule.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def schedule_recipients(schedule: ReportSchedule) -> list[str]:
    """The schedule's recipients, stripped and without duplicates (case-insensitively)."""
    seen: set[str] = set()
    recipients: list[str] = []
    for address in schedule.email_recipients or []:
        address = str(address).strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


# -- the execution's email_status ------------------------------------------------------
def _move(execution: ScheduleExecution, from_: Sequence[str], to: str) -> bool:
    """Move the execution's e-mail from one of ``from_`` to ``to``, if it still is there."""
    moved = ScheduleExecution.objects.claim_channel("email", pk=execution.pk, from_=from_, to=to)
    if moved:
        execution.email_status = to
    return moved


def _claim(execution: ScheduleExecution, status: str) -> bool:
    """Move the execution's e-mail from pending / not requested to ``status``, once."""
    return _move(execution, ScheduleExecution.CLAIMABLE_DELIVERY, status)


def _finish(execution: ScheduleExecution, status: str) -> None:
    """Settle (or give back) the e-mail this attempt claimed: ``sending`` -> ``status``."""
    ScheduleExecution.objects.claim_channel("email", pk=execution.pk, from_=(SENDING,), to=status)
    execution.email_status = status


def skip(execution: ScheduleExecution) -> bool:
    """Record that the execution's e-mail was skipped (an empty report); False if settled."""
    return _claim(execution, SKIPPED)


def skip_pending(execution: ScheduleExecution) -> bool:
    """A run that mails nobody (cancelled, owner inactive): a pending e-mail is ``skipped``."""
    return _move(execution, (PENDING,), SKIPPED)


skip_cancelled = skip_pending


def abandon(report: Report) -> bool:
    """The notification step gave up (its retries are spent): settle what is still pending.

    A scheduled report's e-mail left ``pending`` (or ``sending``) by transient
    errors becomes ``failed``, so the execution's history never shows an
    e-mail "pending" that nothing will send.
    """
    return ScheduleExecution.objects.claim_channel(
        "email", report=report, from_=ScheduleExecution.UNSETTLED_DELIVERY, to=FAILED
    )


def abandon_execution_failure(execution: ScheduleExecution) -> bool:
    """The failure e-mail of a run without a report could not be sent: record it ``failed``."""
    return _move(execution, ScheduleExecution.UNSETTLED_DELIVERY, FAILED)


def deliver_scheduled(
    report: Report, execution: ScheduleExecution, *, takeover: bool = False
) -> str | None:
    """E-mail a scheduled run: the report to the recipients, a failure to the owner.

    Once per execution: ``email_status`` is claimed (pending / not requested
    -> sending) with a conditional update and then set to ``sent``,
    ``skipped`` or ``failed``. On a transient error the claim is given back
    (``pending``) and the error raised, so the notification task retries.
    ``takeover`` (the notification's lease was taken over from a run that
    died) may claim an e-mail left ``sending`` too. Returns the status set,
    or None when there was nothing (left) to do.
    """
    schedule = execution.schedule
    if report.status == Report.Status.COMPLETED:
        if not schedule.send_email:
            return None

        def completed_context() -> tuple[dict[str, Any], ReportFile | None]:
            file = report_file(report)
            context = _completed_context(
                report, file, schedule=schedule, execution=execution, owner=schedule.owner
            )
            return context, file

        return _deliver_once(
            execution,
            "schedule_completed",
            schedule_recipients(schedule),
            completed_context,
            takeover=takeover,
        )
    if report.status == Report.Status.FAILED:
        # The owner hears about a failed run whether or not the schedule mails its reports:
        # the recipients get nothing, and an unattended schedule must not fail unnoticed.
        def failed_context() -> tuple[dict[str, Any], ReportFile | None]:
            context = _context(
                report, schedule=schedule, execution=execution, owner=schedule.owner, file=None
            )
            return context, None

        owner = _owner_recipients(schedule)
        return _deliver_once(execution, "schedule_failed", owner, failed_context, takeover=takeover)
    return None


def deliver_execution_failure(execution: ScheduleExecution) -> str | None:
    """E-mail the owner that a scheduled run failed before its report existed.

    The run's parameters no longer validated, its generator was removed, its
    report could not be requested or its stored timing is invalid: the
    execution is ``failed`` without a report, and ``execution.error`` says
    why. Same template (``schedule_failed``, with ``report`` None) and the same
    at-most-once claim on ``email_status`` as :func:`deliver_scheduled`;
    a transient error gives the claim back and is raised for a retry.
    """
    if execution.status != ScheduleExecution.Status.FAILED or execution.report_id is not None:
        return None
    schedule = execution.schedule

    def failed_context() -> tuple[dict[str, Any], ReportFile | None]:
        context = {
            "report": None,
            "event": "failed",
            "download_url": None,
            "file_url": None,
            "file_url_expires_at": None,
            "row_count": None,
            "duration_seconds": None,
            "file_size": None,
            "error": execution.error,
            "base_url": report_settings.BASE_URL,
            "schedule": schedule,
            "execution": execution,
            "owner": schedule.owner,
            "file": None,
        }
        return context, None

    return _deliver_once(execution, "schedule_failed", _owner_recipients(schedule), failed_context)


def _owner_recipients(schedule: ReportSchedule) -> list[str]:
    owner_email = getattr(schedule.owner, "email", "")
    return [owner_email] if owner_email else []


def _deliver_once(
    execution: ScheduleExecution,
    name: str,
    recipients: list[str],
    build: Callable[[], tuple[dict[str, Any], ReportFile | None]],
    *,
    takeover: bool = False,
) -> str | None:
    """Claim the execution's e-mail, send template set ``name``, record the outcome.

    ``build`` makes the context (and the file to attach) once the claim is
    held, in the schedule's time zone. Recipients the policy refuses now
    (``EMAIL_ALLOWED_DOMAINS``, ``EMAIL_RECIPIENT_POLICY``, which may have
    changed since the schedule was saved) are left out, logged and noted on
    the execution. No recipients (left): ``skipped``.
    """
    schedule = execution.schedule
    recipients = allowed_recipients(execution, recipients)
    if not recipients:
        return SKIPPED if skip(execution) else None
    claimable = ScheduleExecution.CLAIMABLE_DELIVERY + ((SENDING,) if takeover else ())
    if not _move(execution, claimable, SENDING):
        return None  # sent, sending or settled by an earlier (or concurrent) attempt
    tz = _schedule_tz(schedule)
    try:
        with timezone.override(tz):
            context, file = build()
            send(name, context, recipients, file=file, msgid=message_id(name, execution.pk))
    except Exception as exc:
        if is_transient(exc):
            _finish(execution, PENDING)  # the claim given back, for the retry
            raise
        logger.exception(
            "Could not e-mail execution %s of schedule %s; not retrying.",
            execution.pk,
            schedule.pk,
        )
        _finish(execution, FAILED)
        return FAILED
    _finish(execution, SENT)
    return SENT
