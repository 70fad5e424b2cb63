"""Admin for :class:`~django_async_reports.models.ReportSchedule`: its form and its actions.

A schedule's own fields are edited here like through the API: the form is
validated like the API's input (cron expression, time zone, recipients, webhook
URL, parameters and their template variables: ``schedules.validate_schedule``, the
validator the API and the services use too; see :func:`_validate`) and saved
through :mod:`django_async_reports.schedules`, which computes ``next_run_at``.
What the scheduler and the workers write (next/last run, executions) is
read-only.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import ValidationError as ParametersInvalid

from .. import schedules
from ..models import ReportSchedule, ScheduleExecution
from ..registry import registry
from .base import ReportTypeColumn, ReportTypeListFilter, type_label
from .history import ScheduleExecutionInline

WEEKDAY_CHOICES = [
    ("", "---------"),
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class ReportScheduleForm(forms.ModelForm):
    """The schedule's fields, validated as the API validates them (see :func:`_validate`)."""

    report_type = forms.ChoiceField(label=_("report type"))
    weekday = forms.TypedChoiceField(
        label=_("weekday"),
        choices=WEEKDAY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("Weekly schedules only (Monday when left empty)."),
    )
    webhook_url = forms.URLField(
        label=_("webhook URL"),
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text=_("POSTed a signed JSON payload when a run completes or fails."),
    )
    email_recipients = forms.CharField(
        label=_("e-mail recipients"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address per line (or separated by commas)."),
    )

    class Meta:
        model = ReportSchedule
        fields = ("owner", *schedules.EDITABLE_FIELDS)
        help_texts = {
            "parameters": _(
                "A JSON object; values may use template variables such as {{last_week_start}}."
            ),
            "cron_expression": _('Custom schedules only, e.g. "0 8 * * 1-5".'),
            "day_of_month": _("Monthly schedules only (1-31; 31 means the last day)."),
            "timezone": _('An IANA time zone name, e.g. "Europe/Paris".'),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Choices from the registry at form level: the model field has none.
        choices: list[tuple[str, Any]] = list(registry.choices())
        # A new instance already has its (UUID) primary key: ``_state.adding`` tells.
        adding = self.instance._state.adding
        stored = "" if adding else self.instance.report_type
        if stored and stored not in registry:
            choices.append((stored, type_label(stored)))
        report_type = self.fields["report_type"]
        assert isinstance(report_type, forms.ChoiceField)
        report_type.choices = choices
        if not adding and not self.is_bound:
            self.initial["email_recipients"] = "\n".join(self.instance.email_recipients or [])
        self.validated_schedule: dict[str, Any] = {}

    def clean_email_recipients(self) -> list[str]:
        raw = self.cleaned_data.get("email_recipients") or ""
        return [item.strip() for item in re.split(r"[\s,;]+", raw) if item.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if any(name not in cleaned for name in schedules.EDITABLE_FIELDS):
            return cleaned  # a field is already invalid: its error is shown
        adding = self.instance._state.adding
        owner = cleaned.get("owner") if adding else self.instance.owner
        if owner is None:
            return cleaned
        data = {name: cleaned[name] for name in schedules.EDITABLE_FIELDS}
        try:
            self.validated_schedule = _validate(data, owner, None if adding else self.instance)
        except forms.ValidationError as exc:
            for name, errors in exc.update_error_dict({}).items():
                self.add_error(name if name in self.fields else None, errors)
            return cleaned
        cleaned.update(self.validated_schedule)
        return cleaned


def _validate(data: dict[str, Any], owner: Any, instance: ReportSchedule | None) -> dict[str, Any]:
    """``data`` checked by the schedules' one validator: the values to save.

    The form shows every timing field at once, so those the chosen frequency
    does not use are cleared rather than refused (the API refuses them). The
    validator's errors become the form's, by field name; keys that are not
    form fields end up as non-field errors, nested ones as "field: message".
    """
    try:
        return schedules.validate_schedule(data, owner=owner, instance=instance)
    except ParametersInvalid as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        raise forms.ValidationError(
            {name: _flatten_errors(value) for name, value in detail.items()}
        ) from exc


def _flatten_errors(detail: Any, prefix: str = "") -> list[str]:
    """DRF error details (lists, or dicts for nested fields) as flat messages."""
    if isinstance(detail, dict):
        messages_: list[str] = []
        for key, value in detail.items():
            label = str(key) if key != "non_field_errors" else ""
            messages_.extend(_flatten_errors(value, f"{prefix}{label}: " if label else prefix))
        return messages_
    if isinstance(detail, (list, tuple)):
        return [message for item in detail for message in _flatten_errors(item, prefix)]
    return [f"{prefix}{detail}"]


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ReportTypeColumn, admin.ModelAdmin):
    """Schedules with their latest runs; enable, disable and run now through the services."""

    form = ReportScheduleForm
    list_display = (
        "title",
        "owner",
        "report_type_label",
        "frequency",
        "enabled",
        "next_run_at",
        "last_run_at",
    )
    list_filter = ("enabled", "frequency", ReportTypeListFilter, "send_email", "next_run_at")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username", "owner__email", "id")
    search_help_text = _("Title, owner's username or e-mail, or schedule id.")
    raw_id_fields = ("owner",)
    ordering = ("-created_at",)
    actions = ("enable_schedules", "disable_schedules", "run_schedules_now")
    inlines = (ScheduleExecutionInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "owner",
                    "title",
                    "report_type",
                    "priority",
                    "parameters",
                    "format",
                    "compress",
                )
            },
        ),
        (
            _("When"),
            {
                "fields": (
                    "frequency",
                    "time_of_day",
                    "weekday",
                    "day_of_month",
                    "cron_expression",
                    "timezone",
                    "enabled",
                    "next_run_at",
                    "last_run_at",
                )
            },
        ),
        (
            _("Delivery"),
            {
                "fields": (
                    "send_email",
                    "email_recipients",
                    "skip_if_empty",
                    "webhook_url",
                    "webhook_secret_hint",
                )
            },
        ),
        (_("History"), {"fields": ("executions_link", "id", "created_at", "updated_at")}),
    )
    # Written by the scheduler, or generated (the secret) by the service layer.
    readonly_fields = (
        "id",
        "next_run_at",
        "last_run_at",
        "webhook_secret_hint",
        "executions_link",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        # The parameters were validated for the owner: a schedule never changes hands.
        return (*fields, "owner") if obj is not None else fields

    # -- saving through the service layer ------------------------------------
    def get_inlines(self, request: HttpRequest, obj: ReportSchedule | None) -> Any:
        # A schedule being added has no history yet.
        return self.inlines if obj is not None else ()

    def save_model(
        self, request: HttpRequest, obj: ReportSchedule, form: Any, change: bool
    ) -> None:
        fields = form.validated_schedule
        if change:
            # ``obj`` already holds the new values; the service compares them
            # with the stored ones to save only what changed (and to recompute
            # next_run_at when the timing did), so it gets the stored row.
            stored = ReportSchedule.objects.get(pk=obj.pk)
            schedules.update_schedule(stored, **fields)
        else:
            created = schedules.create_schedule(owner=form.cleaned_data["owner"], **fields)
            obj.pk = created.pk
        # The admin goes on with ``obj`` (log entry, redirect): make it the saved row.
        obj.refresh_from_db()

    # -- columns and read-only fields ----------------------------------------
    @admin.display(description=_("webhook secret"))
    def webhook_secret_hint(self, obj: ReportSchedule) -> str:
        # The owner reads it from the API; staff only see which one is in use.
        if not obj.webhook_secret:
            return self.get_empty_value_display()
        return f"\u2026{obj.webhook_secret[-4:]}"

    @admin.display(description=_("executions"))
    def executions_link(self, obj: ReportSchedule) -> str:
        if obj.pk is None:
            return self.get_empty_value_display()
        count = obj.executions.count()
        url = reverse(
            "admin:django_async_reports_scheduleexecution_changelist",
            current_app=self.admin_site.name,
        )
        return format_html(
            '<a href="{}?schedule__id__exact={}">{}</a>',
            url,
            obj.pk,
            ngettext("%(count)d execution", "%(count)d executions", count) % {"count": count},
        )

    # -- actions -------------------------------------------------------------
    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[ReportSchedule], enabled: bool
    ) -> None:
        changed = 0
        for schedule in queryset:
            if schedule.enabled == enabled:
                continue
            schedules.set_enabled(schedule, enabled)
            self.log_change(request, schedule, "Enabled." if enabled else "Disabled.")
            changed += 1
        if enabled:
            text = ngettext("%(count)d schedule enabled.", "%(count)d schedules enabled.", changed)
        else:
            text = ngettext(
                "%(count)d schedule disabled.", "%(count)d schedules disabled.", changed
            )
        self.message_user(request, text % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Enable selected schedules"), permissions=["change"])
    def enable_schedules(self, request: HttpRequest, queryset: QuerySet[ReportSchedule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description=_("Disable selected schedules"), permissions=["change"])
    def disable_schedules(self, request: HttpRequest, queryset: QuerySet[ReportSchedule]) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description=_("Run selected schedules now"), permissions=["change"])
    def run_schedules_now(self, request: HttpRequest, queryset: QuerySet[ReportSchedule]) -> None:
        started = 0
        for schedule in queryset:
            # A run that cannot start (parameters no longer valid, broker down)
            # is recorded as a failed execution whose error says why.
            execution = schedules.run_now(schedule)
            self.log_change(request, schedule, f"Run now: execution {execution.pk}.")
            if execution.status == ScheduleExecution.Status.FAILED:
                self.message_user(
                    request,
                    _("%(title)s could not run: %(reason)s")
                    % {"title": schedule.title, "reason": execution.error},
                    messages.WARNING,
                )
                continue
            started += 1
        if started:
            self.message_user(
                request,
                ngettext(
                    "%(count)d schedule run now: its report is queued.",
                    "%(count)d schedules run now: their reports are queued.",
                    started,
                )
                % {"count": started},
                messages.SUCCESS,
            )
