"""What the package's admins share: read-only bases, report-type filter and column, report links.

Reports and schedules outlive the generator that made them, so everything
that shows a ``report_type`` here also copes with a type no longer registered.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import Report, ReportSchedule
from ..registry import registry


def type_label(report_type: str) -> str:
    """The generator's label, or "sales (not registered)" once its generator is gone."""
    return registry.label_for(report_type, missing=gettext("%(report_type)s (not registered)"))


def link_to_report(report_id: Any, label: Any, *, current_app: str) -> str:
    """A link to a report's admin page, on the admin site named ``current_app``."""
    url = reverse(
        "admin:django_async_reports_report_change",
        args=[quote(report_id)],
        current_app=current_app,
    )
    return format_html('<a href="{}">{}</a>', url, label)


class ReportTypeListFilter(admin.SimpleListFilter):
    """Filter on ``report_type``: the registered generators plus types still in the table.

    The model field has no ``choices`` (registering a generator must not create
    a migration), so the choices are built here at request time.
    """

    title = _("report type")
    parameter_name = "report_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        choices: list[tuple[str, Any]] = list(registry.choices())
        registered = {value for value, _label in choices}
        stored = (
            model_admin.get_queryset(request)
            .order_by("report_type")
            .values_list("report_type", flat=True)
            .distinct()
        )
        choices.extend((value, type_label(value)) for value in stored if value not in registered)
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(report_type=value)
        return queryset


class ReportTypeColumn:
    """Mixin for a ModelAdmin of a model with a ``report_type``: its label as a column/field."""

    @admin.display(description=_("report type"), ordering="report_type")
    def report_type_label(self, obj: Report | ReportSchedule) -> str:
        return type_label(obj.report_type)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the scheduler and the workers only: viewable, never edited or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting an execution would also free its (schedule, due_at) slot.
        return False


class ReadOnlyInline(admin.TabularInline):
    """A history shown under its parent: no rows added, changed or deleted."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
