"""E-mail delivery: the report to its requester or to a schedule's recipients, failures to owners.

Mail goes through Django's e-mail framework (``EMAIL_BACKEND``). Subject and
body come from templates a project may override (see ``TEMPLATES`` below):
``<name>_subject.txt``, ``<name>_body.txt`` (rendered without HTML escaping)
and, when a project adds one, ``<name>_body.html`` as an HTML alternative.

A completed report's file is attached when it is at most
``EMAIL_ATTACHMENT_MAX_BYTES``; otherwise, or when it cannot be read, the
mail links to the authenticated download endpoint and says why nothing is
attached. A mail never lacks its report without saying so. With
``EMAIL_LINK_EXPIRES`` set and an S3 storage that signs its URLs, the mail of a
file too large to attach also carries a presigned URL of the file, for
recipients who cannot sign in as the owner: a bearer credential, never logged.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import smtplib
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.template import Context, TemplateDoesNotExist
from django.template import Template as DjangoTemplate
from django.template.loader import get_template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from ..conf import report_settings
from ..downloads import signed_url
from ..models import Report, ScheduleExecution
from ..storage import download_filename, report_storage

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
# Statuses an execution's e-mail may be claimed from (and given back to).
CLAIMABLE = (Delivery.NOT_REQUESTED, Delivery.PENDING)
# The outcomes as plain strings (django-stubs types TextChoices members as tuples).
SENT, SKIPPED, FAILED = str(Delivery.SENT), str(Delivery.SKIPPED), str(Delivery.FAILED)
SENDING, PENDING = str(Delivery.SENDING), str(Delivery.PENDING)


# -- links and files ---------------------------------------------------------------
def download_url(report: Report) -> str | None:
    """Absolute link to the authenticated download endpoint, when it can be built.

    ``ASYNC_REPORTS["BASE_URL"]`` is put before the path; without it the path
    alone is returned. None when the app's URLs are not mounted.
    """
    try:
        path = reverse("django_async_reports:report-download", kwargs={"pk": report.pk})
    except NoReverseMatch:
        return None
    base = report_settings.BASE_URL
    return f"{base.rstrip('/')}{path}" if base else path


@dataclass
class ReportFile:
    """What a completed report's mail carries: the file, or why it does not."""

    name: str
    size: int | None
    content: bytes | None = None
    mimetype: str = "application/octet-stream"
    too_large: bool = False
    error: str = ""  # why the file could not be attached, for the reader

    @property
    def attached(self) -> bool:
        return self.content is not None


def report_file(report: Report) -> ReportFile:
    """Read a completed report's file for attaching, unless it is too large or unreadable.

    The content is checked against the checksum recorded at completion: a
    truncated or replaced file is linked, not attached.
    """
    name = download_filename(report)
    size = report.result_data.get("file_size")
    limit = int(report_settings.EMAIL_ATTACHMENT_MAX_BYTES or 0)
    file = ReportFile(name=name, size=size if isinstance(size, int) else None)
    guessed, encoding = mimetypes.guess_type(name)
    # A compressed report is attached as the .gz file it is, not as its content.
    file.mimetype = (
        "application/gzip" if encoding == "gzip" else guessed or "application/octet-stream"
    )
    if not report.result_file:
        file.error = "the report has no stored file"
        return file
    if file.size is not None and file.size > limit:
        file.too_large = True
        return file
    try:
        with report_storage.open(report.result_file.name, "rb") as fh:
            content = fh.read(limit + 1)
    except Exception:
        logger.warning(
            "Could not read the file of report %s to attach it; linking it instead.",
            report.pk,
            exc_info=True,
        )
        file.error = "the file could not be read"
        return file
    if len(content) > limit:
        file.too_large = True
        return file
    checksum = report.result_data.get("checksum")
    if checksum and checksum != f"sha256:{hashlib.sha256(content).hexdigest()}":
        logger.error("The file of report %s does not match its checksum.", report.pk)
        file.error = "the stored file does not match its recorded checksum"
        return file
    file.size = len(content)
    file.content = content
    return file


def file_link(report: Report, file: ReportFile) -> tuple[str | None, datetime | None]:
    """A presigned URL of a file too large to attach, and the time it stops working.

    ``(None, None)`` unless ``EMAIL_LINK_EXPIRES`` is set, the file is too large
    (an unreadable or tampered file gets no link) and the storage signs its URLs
    (see :func:`~django_async_reports.downloads.signed_url`). The lifetime is cut
    to the report's ``expires_at``, so the link never outlives the report's
    retention; an expired report gets none. The URL is a bearer credential:
    nothing here logs it.
    """
    setting = report_settings.EMAIL_LINK_EXPIRES
    if setting is None or not file.too_large:
        return None, None
    now = timezone.now()  # before signing: the URL is valid at least until now + lifetime
    try:
        lifetime = int(setting)  # a value E017 refuses must not cost the mail its report
        if report.expires_at is not None:
            lifetime = min(lifetime, int((report.expires_at - now).total_seconds()))
        if lifetime <= 0:
            return None, None
        url = signed_url(report, lifetime)
    except Exception:
        logger.warning(
            "Could not presign the file of report %s; its e-mail links the endpoint only.",
            report.pk,
            exc_info=True,
        )
        return None, None
    if url is None:
        return None, None
    return url, now + timedelta(seconds=lifetime)


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


def send(
    name: str,
    context: dict[str, Any],
    recipients: Sequence[str],
    *,
    file: ReportFile | None = None,
) -> int:
    """Render template set ``name`` and send one message to ``recipients``; raises on error."""
    subject, text, html = render(name, context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=sender(),
        to=list(recipients),
        headers={"Auto-Submitted": "auto-generated"},
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
    if report.status == Report.Status.COMPLETED:
        file = report_file(report)
        return send("report_completed", _completed_context(report, file), [recipient], file=file)
    if report.status == Report.Status.FAILED:
        return send("report_failed", _context(report), [recipient])
    return 0


def deliver_requester_email(report: Report) -> None:
    """The ad-hoc report's e-mail, as :func:`~django_async_reports.delivery.deliver` sends it.

    A transient error (connection, SMTP 4xx) propagates so the notification
    step retries; a permanent one (SMTP 5xx, a template error) is logged and
    dropped, since sending again would fail the same way.
    """
    try:
        send_report_email(report)
    except Exception as exc:
        if is_transient(exc):
            raise
        logger.exception("Could not e-mail report %s to its requester; not retrying.", report.pk)


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


def _claim(execution: ScheduleExecution, status: str) -> bool:
    """Move the execution's e-mail from pending / not requested to ``status``, once."""
    return bool(
        ScheduleExecution.objects.filter(pk=execution.pk, email_status__in=CLAIMABLE).update(
            email_status=status
        )
    )


def _finish(execution: ScheduleExecution, status: str) -> None:
    ScheduleExecution.objects.filter(pk=execution.pk, email_status=SENDING).update(
        email_status=status
    )
    execution.email_status = status


def skip_schedule_email(execution: ScheduleExecution) -> bool:
    """Record that the execution's e-mail was skipped (an empty report); False if settled."""
    if _claim(execution, SKIPPED):
        execution.email_status = SKIPPED
        return True
    return False


def deliver_schedule_email(report: Report, execution: ScheduleExecution) -> str | None:
    """E-mail a scheduled run: the report to the recipients, a failure to the owner.

    At most once per execution: ``email_status`` is claimed (pending / not
    requested -> sending) with a conditional update and then set to ``sent``,
    ``skipped`` or ``failed``. On a transient error the claim is given back
    (``pending``) and the error raised, so the notification task retries.
    Returns the status set, or None when there was nothing (left) to do.
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
            execution, "schedule_completed", schedule_recipients(schedule), completed_context
        )
    if report.status == Report.Status.FAILED:
        # The owner hears about a failed run whether or not the schedule mails its reports:
        # the recipients get nothing, and an unattended schedule must not fail unnoticed.
        def failed_context() -> tuple[dict[str, Any], ReportFile | None]:
            context = _context(
                report, schedule=schedule, execution=execution, owner=schedule.owner, file=None
            )
            return context, None

        return _deliver_once(
            execution, "schedule_failed", _owner_recipients(schedule), failed_context
        )
    return None


def deliver_execution_failure_email(execution: ScheduleExecution) -> str | None:
    """E-mail the owner that a scheduled run failed before its report existed.

    The run's parameters no longer validated, its generator was removed, its
    report could not be requested or its stored timing is invalid: the
    execution is ``failed`` without a report, and ``execution.error`` says
    why. Same template (``schedule_failed``, with ``report`` None) and the same
    at-most-once claim on ``email_status`` as :func:`deliver_schedule_email`;
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
) -> str | None:
    """Claim the execution's e-mail, send template set ``name``, record the outcome.

    ``build`` makes the context (and the file to attach) once the claim is
    held, in the schedule's time zone. No recipients: ``skipped``.
    """
    schedule = execution.schedule
    if not recipients:
        return SKIPPED if skip_schedule_email(execution) else None
    if not _claim(execution, SENDING):
        return None  # sent, sending or settled by an earlier (or concurrent) attempt
    tz = _schedule_tz(schedule)
    try:
        with timezone.override(tz):
            context, file = build()
            send(name, context, recipients, file=file)
    except Exception as exc:
        if is_transient(exc):
            ScheduleExecution.objects.filter(pk=execution.pk, email_status=SENDING).update(
                email_status=PENDING
            )
            execution.email_status = PENDING
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


def skip_cancelled_email(execution: ScheduleExecution) -> bool:
    """A cancelled run mails nobody: its pending e-mail becomes ``skipped``."""
    updated = ScheduleExecution.objects.filter(pk=execution.pk, email_status=PENDING).update(
        email_status=SKIPPED
    )
    if updated:
        execution.email_status = SKIPPED
    return bool(updated)


def abandon_schedule_email(report: Report) -> bool:
    """Mark a scheduled report's pending or stuck e-mail failed: the retries are spent.

    For the notification task to call when it gives up, so an execution never
    shows an e-mail "pending" that nothing will send.
    """
    return bool(
        ScheduleExecution.objects.filter(
            Q(email_status=PENDING) | Q(email_status=SENDING), report=report
        ).update(email_status=FAILED)
    )


def abandon_execution_email(execution: ScheduleExecution) -> bool:
    """As :func:`abandon_schedule_email`, for an execution without a report."""
    updated = ScheduleExecution.objects.filter(
        Q(email_status=PENDING) | Q(email_status=SENDING), pk=execution.pk
    ).update(email_status=FAILED)
    if updated:
        execution.email_status = FAILED
    return bool(updated)
