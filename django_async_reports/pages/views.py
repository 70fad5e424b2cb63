"""The view of the "My reports" page.

The page is one template the browser then drives through the reports API (with
its session and CSRF token), so requesting, cancelling and regenerating go
through the same serializers, permissions, limits and throttles as any client.
The view gives the template what the API would make the script fetch first:
the types this user may run with their form fields, and their schedules.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from .. import services
from ..api.schedule_serializers import attach_last_executions, last_execution_of, schedules_of
from ..conf import report_settings
from ..models import Report, ReportSchedule
from ..services import permissions
from .form_fields import FormField, form_fields

__all__ = ["MyReportsView", "PageReportType", "page_report_types", "page_strings", "timing_text"]


@dataclass(frozen=True)
class PageReportType:
    """A report type as the page's form offers it."""

    report_type: str
    label: str
    description: str
    formats: list[str]
    default_format: str
    fields: list[FormField] = field(default_factory=list)


def page_report_types(user: Any) -> list[PageReportType]:
    """The types ``user`` may run (as ``GET /types/`` lists them), with their form fields."""
    return [
        PageReportType(
            report_type=g.report_type,
            label=g.get_label(),
            description=g.description,
            formats=g.get_formats(),
            default_format=services.resolve_format(g.report_type, None),
            fields=form_fields(g),
        )
        for g in permissions.runnable_types(user)
    ]


def timing_text(schedule: ReportSchedule) -> str:
    """When ``schedule`` runs, in words: "Weekly on Monday at 08:00 (Europe/Paris)"."""
    at = schedule.time_of_day.strftime("%H:%M")
    frequency = ReportSchedule.Frequency
    if schedule.frequency == frequency.CUSTOM:
        text = _("Cron %(expression)s") % {"expression": schedule.cron_expression}
    elif schedule.frequency == frequency.WEEKLY and schedule.weekday is not None:
        day = calendar.day_name[schedule.weekday]
        text = _("Weekly on %(day)s at %(time)s") % {"day": day, "time": at}
    elif schedule.frequency == frequency.MONTHLY and schedule.day_of_month is not None:
        text = _("Monthly on day %(day)s at %(time)s") % {"day": schedule.day_of_month, "time": at}
    else:
        text = _("Daily at %(time)s") % {"time": at}
    return f"{text} ({schedule.timezone})"


def page_strings() -> dict[str, str]:
    """The script's words, translated here; ``{name}`` marks a value it fills in."""
    return {
        "requested": _("Report requested: {title}"),
        "reused": _("An identical report is ready: {title}"),
        "joined": _("An identical report is already being made: {title}"),
        "completed": _("Report ready: {title}"),
        "failed": _("Report failed: {title}"),
        "cancelled": _("Report cancelled."),
        "expired": _("This report has expired; regenerate it for a fresh copy."),
        "done": _("{rows} rows"),
        "waiting": _("Waiting to start"),
        "rows": _("{rows} rows"),
        "rowsOf": _("{rows} of {total} rows"),
        "rate": _("{rate} rows/s"),
        "eta": _("about {time} left"),
        "seconds": _("{n} s"),
        "minutes": _("{n} min {s} s"),
        "hours": _("{n} h {m} min"),
        "progressOf": _("Progress of {title}"),
        "downloadOf": _("Download {title}"),
        "cancelOf": _("Cancel {title}"),
        "regenerateOf": _("Regenerate {title}"),
        "fixErrors": _("The report was not requested: please correct the fields marked below."),
        "invalidJson": _("Enter a valid JSON value."),
        "networkError": _("The server could not be reached; trying again."),
        "serverError": _("The server answered {status}."),
    }


class MyReportsView(LoginRequiredMixin, TemplateView):
    """``django_async_reports/pages/my_reports.html`` for the signed-in user.

    Override the template (or its parts, ``_request_form.html``,
    ``_report_card.html``, ``_schedules.html``) in your project's templates, or
    subclass this view and mount it instead to change the context.
    """

    template_name = "django_async_reports/pages/my_reports.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        report_types = page_report_types(user)
        priorities = permissions.allowed_priorities(user)
        schedules = list(schedules_of(user).order_by("-created_at"))
        attach_last_executions(schedules)
        context.update(
            report_types=report_types,
            priorities=[(p, label) for p, label in Report.Priority.choices if p in priorities],
            default_priority=Report.Priority.NORMAL if Report.Priority.NORMAL in priorities else "",
            can_email=bool(getattr(user, "email", "")),
            schedules=[
                {
                    "schedule": schedule,
                    "timing": timing_text(schedule),
                    "last_execution": last_execution_of(schedule),
                }
                for schedule in schedules
            ],
            page_config={
                "reportsUrl": reverse("django_async_reports:report-list"),
                "pollSeconds": float(report_settings.PAGE_POLL_SECONDS),
                "pageSize": int(report_settings.PAGE_SIZE),
                "statusLabels": dict(Report.Status.choices),
                "strings": page_strings(),
                "types": {
                    t.report_type: {
                        "label": t.label,
                        "formats": t.formats,
                        "defaultFormat": t.default_format,
                    }
                    for t in report_types
                },
            },
        )
        return context
