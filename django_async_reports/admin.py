"""Admin for :class:`~django_async_reports.models.Report`: follow, cancel, retry, regenerate.

Reports are requested through the API (or :mod:`~django_async_reports.services`),
so the admin cannot add one, and its detail page is read-only: every field is
either written by the worker or would, if edited, bypass the validation and
routing done when the report was requested. State changes happen only through
the actions below, which call the service layer.

Schedules follow at the end of the module, with their executions and webhook
delivery attempts (both read-only: the scheduler and the workers write them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponseGone, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import ValidationError as ParametersInvalid

from . import schedules, services
from .api.schedule_serializers import ReportScheduleSerializer
from .downloads import download_response
from .exceptions import InvalidReportState, NotRegistered, ReportDispatchError
from .models import Report, ReportSchedule, ScheduleExecution, WebhookDelivery
from .registry import registry
from .schedules.validation import EDITABLE_FIELDS as WRITABLE_FIELDS


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
        choices.extend(
            (value, _("%(report_type)s (not registered)") % {"report_type": value})
            for value in stored
            if value not in registered
        )
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Report]) -> QuerySet[Report]:
        value = self.value()
        if value:
            return queryset.filter(report_type=value)
        return queryset


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Browse reports; cancel, retry and regenerate them through the service layer."""

    list_display = (
        "title",
        "report_type_label",
        "user",
        "status_badge",
        "priority",
        "format",
        "progress_bar",
        "created_at",
        "completed_at",
        "expires_at",
    )
    list_filter = ("status", "priority", "format", ReportTypeListFilter, "created_at")
    list_select_related = ("user",)
    search_fields = ("title", "user__username", "user__email", "id", "celery_task_id")
    search_help_text = _("Title, requester's username or e-mail, report id or Celery task id.")
    date_hierarchy = "created_at"
    actions = ("cancel_reports", "retry_reports", "regenerate_reports")

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "title",
                    "report_type_label",
                    "user",
                    "priority",
                    "format",
                    "compress",
                    "send_email",
                    "parameters_display",
                )
            },
        ),
        (
            _("Status"),
            {
                "fields": (
                    "status_badge",
                    "progress_bar",
                    "progress_message",
                    "retry_count",
                    "error_details",
                )
            },
        ),
        (_("Result"), {"fields": ("download_link", "result_file_name", "result_data_display")}),
        (
            _("Dates"),
            {
                "fields": (
                    "created_at",
                    "started_at",
                    "completed_at",
                    "notified_at",
                    "expires_at",
                    "updated_at",
                )
            },
        ),
        (_("Celery"), {"classes": ("collapse",), "fields": ("celery_task_id",)}),
    )
    # Everything: what the worker writes (status, progress, file, result,
    # error, dates, task id) and what was validated and routed at request time.
    readonly_fields = (
        "id",
        "title",
        "report_type_label",
        "user",
        "priority",
        "format",
        "compress",
        "send_email",
        "parameters_display",
        "status_badge",
        "progress_bar",
        "progress_message",
        "retry_count",
        "error_details",
        "download_link",
        "result_file_name",
        "result_data_display",
        "created_at",
        "started_at",
        "completed_at",
        "notified_at",
        "expires_at",
        "updated_at",
        "celery_task_id",
    )

    class Media:
        css = {"all": ("django_async_reports/admin.css",)}

    # -- permissions ---------------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        # Reports are requested through the API or services.request_report().
        return False

    def has_change_permission(self, request: HttpRequest, obj: Report | None = None) -> bool:
        # The change permission gates the actions (checked without an object);
        # a single report's page is view-only, so a save can never overwrite
        # what a worker is writing to the row.
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    # -- deletion goes through the service layer, which also removes the file --
    def delete_model(self, request: HttpRequest, obj: Report) -> None:
        services.delete_report(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        for report in queryset:
            services.delete_report(report)

    # -- columns and read-only fields ----------------------------------------
    @admin.display(description=_("report type"), ordering="report_type")
    def report_type_label(self, obj: Report) -> str:
        try:
            label = registry.get(obj.report_type).get_label()
        except NotRegistered:
            return str(_("%(report_type)s (not registered)") % {"report_type": obj.report_type})
        return str(label)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Report) -> str:
        return format_html(
            '<span class="async-report-status async-report-status-{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("progress"), ordering="progress")
    def progress_bar(self, obj: Report) -> str:
        return format_html(
            '<progress class="async-report-progress" value="{}" max="100" title="{}">{}%</progress>'
            ' <span class="async-report-progress-label">{}%</span>',
            obj.progress,
            obj.progress_message,
            obj.progress,
            obj.progress,
        )

    @admin.display(description=_("parameters"))
    def parameters_display(self, obj: Report) -> str:
        return format_html('<pre class="async-report-pre">{}</pre>', _pretty_json(obj.parameters))

    @admin.display(description=_("result data"))
    def result_data_display(self, obj: Report) -> str:
        if not obj.result_data:
            return self.get_empty_value_display()
        return format_html('<pre class="async-report-pre">{}</pre>', _pretty_json(obj.result_data))

    @admin.display(description=_("error"))
    def error_details(self, obj: Report) -> str:
        if not obj.error_message:
            return self.get_empty_value_display()
        return format_html(
            '<pre class="async-report-pre async-report-error">{}</pre>', obj.error_message
        )

    @admin.display(description=_("result file"))
    def result_file_name(self, obj: Report) -> str:
        # The name only: the storage URL may be public or not served at all;
        # the download link goes through a permission-checked view.
        return obj.result_file.name or self.get_empty_value_display()

    @admin.display(description=_("download"))
    def download_link(self, obj: Report) -> str:
        if obj.status != Report.Status.COMPLETED or not obj.result_file:
            return str(_("Available once the report is completed."))
        opts = self.opts
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_download",
            args=[quote(obj.pk)],
            current_app=self.admin_site.name,
        )
        return format_html('<a class="async-report-download" href="{}">{}</a>', url, _("Download"))

    # -- download ------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        urls: list[URLPattern] = [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name=f"{opts.app_label}_{opts.model_name}_download",
            ),
        ]
        # Before the defaults: their "<path:object_id>/" catches everything.
        return urls + super().get_urls()

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Serve a completed report's file to staff who may view it, whoever requested it.

        The API's download route only serves the requester's own reports.
        """
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        report = self.get_object(request, unquote(object_id))
        if report is None:
            raise Http404(_("No report with this id."))
        if not self.has_view_permission(request, report):
            raise PermissionDenied
        if report.status != Report.Status.COMPLETED or not report.result_file:
            raise Http404(_("Only completed reports can be downloaded."))
        if report.is_expired:
            return HttpResponseGone(_("This report has expired; its file is being deleted."))
        return download_response(report, request)

    # -- actions -------------------------------------------------------------
    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Report],
        operation: Callable[[Report], Report],
        errors: tuple[type[Exception], ...],
    ) -> tuple[list[tuple[Report, Report]], list[tuple[Report, Exception]]]:
        """Call the service ``operation`` on each report, collecting successes and refusals.

        Refusals (``errors``) are expected: the service re-checks each report's
        status in its conditional update, so a report that changed since the
        page was shown is skipped rather than forced.
        """
        done: list[tuple[Report, Report]] = []
        skipped: list[tuple[Report, Exception]] = []
        for report in queryset:
            try:
                done.append((report, operation(report)))
            except errors as exc:
                skipped.append((report, exc))
            except ReportDispatchError as exc:
                # Saved, but the broker refused it: the service marked it failed.
                self.message_user(request, str(exc), messages.ERROR)
        return done, skipped

    def _message_skipped(
        self, request: HttpRequest, skipped: list[tuple[Report, Exception]], reason: str
    ) -> None:
        if not skipped:
            return
        titles = ", ".join(report.title for report, _exc in skipped[:10])
        if len(skipped) > 10:
            titles += ", ..."
        self.message_user(
            request,
            ngettext(
                "%(count)d report skipped: %(reason)s (%(titles)s).",
                "%(count)d reports skipped: %(reason)s (%(titles)s).",
                len(skipped),
            )
            % {"count": len(skipped), "reason": reason, "titles": titles},
            messages.WARNING,
        )

    @admin.action(description=_("Cancel selected reports"), permissions=["change"])
    def cancel_reports(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        done, skipped = self._apply(
            request, queryset, services.cancel_report, (InvalidReportState,)
        )
        for report, _cancelled in done:
            self.log_change(request, report, "Cancelled.")
        if done:
            self.message_user(
                request,
                ngettext("%(count)d report cancelled.", "%(count)d reports cancelled.", len(done))
                % {"count": len(done)},
                messages.SUCCESS,
            )
        self._message_skipped(
            request, skipped, str(_("only pending or processing reports can be cancelled"))
        )

    @admin.action(description=_("Retry selected reports"), permissions=["change"])
    def retry_reports(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        done, skipped = self._apply(request, queryset, services.retry_report, (InvalidReportState,))
        for report, _retried in done:
            self.log_change(request, report, "Retried.")
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d report queued again.", "%(count)d reports queued again.", len(done)
                )
                % {"count": len(done)},
                messages.SUCCESS,
            )
        self._message_skipped(
            request, skipped, str(_("only failed or cancelled reports can be retried"))
        )

    @admin.action(description=_("Regenerate selected reports as new ones"), permissions=["change"])
    def regenerate_reports(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        # Each new report belongs to the original requester, as if they had
        # asked again, and its parameters are validated again for them.
        done, skipped = self._apply(
            request, queryset, services.regenerate_report, (NotRegistered, ParametersInvalid)
        )
        for report, new in done:
            self.log_addition(request, new, f"Regenerated from report {report.pk}.")
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d report regenerated as a new pending report.",
                    "%(count)d reports regenerated as new pending reports.",
                    len(done),
                )
                % {"count": len(done)},
                messages.SUCCESS,
            )
        for report, exc in skipped:
            self.message_user(
                request,
                _("%(title)s was not regenerated: %(reason)s")
                % {"title": report.title, "reason": _describe(exc)},
                messages.WARNING,
            )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ParametersInvalid):
        return str(_("its parameters are no longer valid: %(errors)s")) % {
            "errors": json.dumps(exc.detail, default=str)
        }
    return str(exc)


# -- schedules ------------------------------------------------------------------------
#
# A schedule's own fields are edited here like through the API: the form is
# validated by the API's serializer (cron expression, time zone, recipients,
# webhook URL, parameters and their template variables) and saved through
# django_async_reports.schedules, which computes next_run_at. What the
# scheduler and the workers write (next/last run, executions, webhook
# deliveries) is read-only.

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
    """The schedule's fields, validated by :class:`ReportScheduleSerializer`."""

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
        fields = ("owner", *WRITABLE_FIELDS)
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
            label = _("%(report_type)s (not registered)") % {"report_type": stored}
            choices.append((stored, label))
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
        if any(name not in cleaned for name in WRITABLE_FIELDS):
            return cleaned  # a field is already invalid: its error is shown
        adding = self.instance._state.adding
        owner = cleaned.get("owner") if adding else self.instance.owner
        if owner is None:
            return cleaned
        data = {name: cleaned[name] for name in WRITABLE_FIELDS}
        if data["parameters"] is None:
            data["parameters"] = {}
        # The form shows every timing field at once: those the chosen frequency
        # does not use are ignored (the API, which is sent only what a client
        # means, refuses them instead).
        frequency = data["frequency"]
        if frequency != ReportSchedule.Frequency.CUSTOM:
            data["cron_expression"] = ""
        if frequency != ReportSchedule.Frequency.WEEKLY:
            data["weekday"] = None
        if frequency != ReportSchedule.Frequency.MONTHLY:
            data["day_of_month"] = None
        serializer = ReportScheduleSerializer(
            instance=None if adding else self.instance,
            data=data,
            context={"owner": owner},
        )
        if not serializer.is_valid():
            for name, detail in serializer.errors.items():
                field = name if name in self.fields else None
                for message in _flatten_errors(detail):
                    self.add_error(field, message)
            return cleaned
        self.validated_schedule = dict(serializer.validated_data)
        cleaned.update(self.validated_schedule)
        return cleaned


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


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _report_link(report_id: Any, label: Any) -> str:
    url = reverse("admin:django_async_reports_report_change", args=[quote(report_id)])
    return format_html('<a href="{}">{}</a>', url, label)


def _short(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "\u2026"


class ScheduleExecutionInline(_ReadOnlyInline):
    """The latest runs of a schedule, newest first, each linked to its report."""

    model = ScheduleExecution
    formset = LatestExecutionsFormSet
    fields = (
        "due_at",
        "trigger",
        "status",
        "report_link",
        "row_count",
        "file_size",
        "email_status",
        "webhook_status",
        "error_summary",
        "finished_at",
    )
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("latest executions")

    @admin.display(description=_("report"))
    def report_link(self, obj: ScheduleExecution) -> str:
        if obj.report is None:
            return "-"
        return _report_link(obj.report_id, obj.report.get_status_display())

    @admin.display(description=_("error"))
    def error_summary(self, obj: ScheduleExecution) -> str:
        return _short(obj.error) if obj.error else "-"


@admin.register(ReportSchedule)
class ReportScheduleAdmin(admin.ModelAdmin):
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
    @admin.display(description=_("report type"), ordering="report_type")
    def report_type_label(self, obj: ReportSchedule) -> str:
        try:
            return str(registry.get(obj.report_type).get_label())
        except NotRegistered:
            return str(_("%(report_type)s (not registered)") % {"report_type": obj.report_type})

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
        url = reverse("admin:django_async_reports_scheduleexecution_changelist")
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


class WebhookDeliveryInline(_ReadOnlyInline):
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


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the scheduler and the workers only: viewable, never edited or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting an execution would also free its (schedule, due_at) slot.
        return False


@admin.register(ScheduleExecution)
class ScheduleExecutionAdmin(_ReadOnlyAdmin):
    """Every run of every schedule, with its webhook delivery attempts."""

    list_display = (
        "schedule",
        "due_at",
        "trigger",
        "status",
        "report_link",
        "row_count",
        "file_size",
        "email_status",
        "webhook_status",
    )
    list_filter = ("status", "trigger", "email_status", "webhook_status", "due_at")
    list_select_related = ("schedule", "report")
    search_fields = ("schedule__title", "schedule__owner__username", "schedule__id", "report__id")
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
        "created_at",
    )
    readonly_fields = fields
    inlines = (WebhookDeliveryInline,)

    @admin.display(description=_("report"))
    def report_link(self, obj: ScheduleExecution) -> str:
        if obj.report is None:
            return self.get_empty_value_display()
        return _report_link(obj.report_id, obj.report.title)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnlyAdmin):
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
        return _report_link(obj.report_id, obj.report.title)
