"""E-mail to the requester of a report that asked for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from .conf import report_settings

if TYPE_CHECKING:
    from .models import Report


def download_url(report: Report) -> str | None:
    """Absolute link to the authenticated download endpoint, when it can be built."""
    try:
        path = reverse("django_async_reports:report-download", kwargs={"pk": report.pk})
    except NoReverseMatch:
        return None
    base = report_settings.BASE_URL
    return f"{base.rstrip('/')}{path}" if base else path


def send_report_email(report: Report) -> int:
    """Send the completed/failed e-mail to ``report.user.email``; returns messages sent."""
    recipient = getattr(report.user, "email", "")
    if not recipient:
        return 0
    event = "completed" if report.status == report.Status.COMPLETED else "failed"
    context = {"report": report, "download_url": download_url(report), "event": event}
    prefix = f"django_async_reports/email/report_{event}"
    subject = " ".join(render_to_string(f"{prefix}_subject.txt", context).split())
    body = render_to_string(f"{prefix}_body.txt", context)
    sender = report_settings.EMAIL_FROM or settings.DEFAULT_FROM_EMAIL
    return send_mail(subject, body, sender, [recipient])
