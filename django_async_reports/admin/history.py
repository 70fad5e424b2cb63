"""Admin for what the scheduler and the workers record: schedule runs and webhook attempts.

Both are read-only wherever they are shown: the latest runs under their
schedule, every run in its own list (with its webhook attempts), and every
webhook attempt, for schedules and ad-hoc reports alike.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from ..models import ScheduleExecution, WebhookDelivery
from .base import ReadOnlyAdmin, ReadOnlyInline, link_to_report


class LatestExecutionsFormSet(BaseInlineFormSet):
    """The newest ``limit`` executions only: a daily schedule piles up thousands."""

    limit = 20

    def get_queryset(self) -> Any:
        if not hasattr(self, "_queryset"):
            queryset = super().get_queryset()
            self._queryset = queryset.select_related("report").order_by(
                "-due_at", "-created_at", "-pk"
            )[: self.limit]
        return self._queryset


def _short(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "\u2026"


#: What one run is, at a glance: in its schedule's inline and in the list of all runs.
_RUN_COLUMNS = (
    "due_at",
    "trigger",
    "status",
    "report_link",
    "row_count",
    "file_size",
    "email_status",
    "webhook_status",
)


class ScheduleExecutionInline(ReadOnlyInline):
    """The latest runs of a schedule, newest first, each linked to its report."""

    model = ScheduleExecution
    formset = LatestExecutionsFormSet
    fields = (*_RUN_COLUMNS, "error_summary", "finished_at")
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("latest executions")

    @admin.display(description=_("report"))
    def report_link(self, obj: ScheduleExecution) -> str:
        if obj.report is None:
            return "-"
        return link_to_report(
            obj.report_id, obj.report.get_status_display(), current_app=self.admin_site.name
        )

    @admin.display(description=_("error"))
    def error_summary(self, obj: ScheduleExecution) -> str:
        return _short(obj.error) if obj.error else "-"


class WebhookDeliveryInline(ReadOnlyInline):
    """A run's webhook attempts, newest first."""

    model = WebhookDelivery
    fk_name = "execution"
    fields = (
        "created_at",
        "event",
        "url",
        "attempt",
        "status_code",
        "succeeded",
        "duration_ms",
        "error",
    )
    readonly_fields = fields
    ordering = ("-created_at",)


@admin.register(ScheduleExecution)
class ScheduleExecutionAdmin(ReadOnlyAdmin):
    """Every run of every schedule, with its webhook delivery attempts."""

    list_display = ("schedule", *_RUN_COLUMNS)
    list_filter = ("status", "trigger", "email_status", "webhook_status", "due_at")
    list_select_related = ("schedule", "report")
    search_fields = (
        "schedule__title",
        "schedule__owner__username",
        "schedule__id",
        "report__id",
        "error",
    )
    date_hierarchy = "due_at"
    fields = (
        "schedule",
        "due_at",
        "trigger",
        "status",
        "report_link",
        "started_at",
        "finished_at",
        "row_count",
        "file_size",
        "email_status",
        "webhook_status",
        "error",
        "error_detail",  # the exception behind error: admins only, never in the API
        "note",
        "created_at",
    )
    readonly_fields = fields
    inlines = (WebhookDeliveryInline,)

    @admin.display(description=_("report"))
    def report_link(self, obj: ScheduleExecution) -> str:
        if obj.report is None:
            return self.get_empty_value_display()
        return link_to_report(obj.report_id, obj.report.title, current_app=self.admin_site.name)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every webhook attempt, for schedules and ad-hoc reports alike."""

    list_display = (
        "created_at",
        "event",
        "url",
        "report_link",
        "attempt",
        "status_code",
        "succeeded",
        "duration_ms",
    )
    list_filter = ("succeeded", "event", "created_at")
    list_select_related = ("report",)
    search_fields = ("url", "message_id", "report__id", "report__title")
    date_hierarchy = "created_at"
    fields = (
        "report_link",
        "execution",
        "event",
        "url",
        "message_id",
        "attempt",
        "status_code",
        "succeeded",
        "duration_ms",
        "error",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("report"))
    def report_link(self, obj: WebhookDelivery) -> str:
        return link_to_report(obj.report_id, obj.report.title, current_app=self.admin_site.name)
