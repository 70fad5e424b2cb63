"""Admin for :class:`~django_async_reports.models.Report`: follow, cancel, retry, regenerate.

Reports are requested through the API (or :mod:`~django_async_reports.services`),
so the admin cannot add one, and its detail page is read-only: every field is
either written by the worker or would, if edited, bypass the validation and
routing done when the report was requested. State changes happen only through
the actions below, which call the service layer; staff download files through
the admin's own permission-checked view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseGone, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.exceptions import ValidationError as ParametersInvalid

from .. import services
from ..downloads import download_response
from ..exceptions import REFUSALS, InvalidReportState, NotRegistered, describe
from ..models import Report
from .base import ReportTypeColumn, ReportTypeListFilter


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


@admin.register(Report)
class ReportAdmin(ReportTypeColumn, admin.ModelAdmin):
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
    search_fields = (
        "title",
        "user__username",
        "user__email",
        "id",
        "celery_task_id",
        "error_message",
    )
    search_help_text = _(
        "Title, requester's username or e-mail, report id, Celery task id or an error's reference."
    )
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
                    "error_detail_display",
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
    readonly_fields = tuple(flatten_fieldsets(fieldsets))

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

    @admin.display(description=_("error detail (admins only)"))
    def error_detail_display(self, obj: Report) -> str:
        """The exception and traceback behind ``error_message``: never shown to users."""
        if not obj.error_detail:
            return "-"
        return format_html(
            '<pre class="async-report-pre async-report-error">{}</pre>', obj.error_detail
        )

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
        # The owner's permissions and caps apply, as to a request of theirs.
        done, skipped = self._apply(
            request, queryset, services.retry_report, (InvalidReportState, *REFUSALS)
        )
        refused = [(report, exc) for report, exc in skipped if isinstance(exc, REFUSALS)]
        skipped = [(report, exc) for report, exc in skipped if not isinstance(exc, REFUSALS)]
        self._message_refused(request, refused, str(_("was not retried")))
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
            request,
            queryset,
            services.regenerate_report,
            (NotRegistered, ParametersInvalid, *REFUSALS),
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
        self._message_refused(request, skipped, str(_("was not regenerated")))

    def _message_refused(
        self, request: HttpRequest, refused: Sequence[tuple[Report, Exception]], what: str
    ) -> None:
        """One warning per report an action refused, saying why."""
        for report, exc in refused:
            self.message_user(
                request,
                _("%(title)s %(what)s: %(reason)s")
                % {"title": report.title, "what": what, "reason": _refusal(exc)},
                messages.WARNING,
            )


def _refusal(exc: Exception) -> str:
    """Why a report could not be regenerated, worded for the staff member who asked.

    Refused parameters get a translated sentence of their own: ``describe()``
    words them for a report's stored error ("Invalid parameters: ..."), which
    reads oddly after "was not regenerated:". Anything else is described as
    reports record it.
    """
    if isinstance(exc, REFUSALS):
        return str(exc)  # worded for people already
    if isinstance(exc, ParametersInvalid):
        return str(_("its parameters are no longer valid: %(errors)s")) % {
            "errors": json.dumps(exc.detail, default=str)
        }
    return describe(exc)
