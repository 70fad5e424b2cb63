"""The reports REST API: ``ReportViewSet``, with the routes of the reports mount."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty
from rest_framework.filters import OrderingFilter
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services
from ..conf import report_settings
from ..downloads import download_response
from ..models import Report
from ..registry import registry
from ..services import permissions
from .base import AsyncReportsViewMixin
from .filters import ReportFilter
from .parameters_schema import parameters_schema
from .progress_answers import cached_entry, from_cache, from_row, object_rules_apply
from .report_serializers import ReportCreateSerializer, ReportSerializer


def describe_parameters(generator_class: Any) -> dict[str, Any]:
    """Field name -> type, required, help text and choices of a generator's parameters."""
    if generator_class.parameters_class is None:
        return {}
    described: dict[str, Any] = {}
    for name, field in generator_class.parameters_class().fields.items():
        if field.read_only:
            continue
        info: dict[str, Any] = {
            "type": type(field).__name__.removesuffix("Field").lower() or "field",
            "required": bool(field.required),
        }
        if field.help_text:
            info["help_text"] = str(field.help_text)
        if getattr(field, "choices", None):
            info["choices"] = list(field.choices)
        default = field.default
        if not field.required and default not in (None, empty) and not callable(default):
            info["default"] = default
        described[name] = info
    return described


def idempotency_key_of(request: Request) -> str:
    """The request's ``Idempotency-Key`` header ("" without one); 400 when malformed.

    At most 255 visible ASCII characters, as the IETF draft's keys (UUIDs,
    typically) are: the key is stored, never interpreted.
    """
    key = request.headers.get("Idempotency-Key", "")
    if key and (len(key) > 255 or not key.isascii() or not key.isprintable() or " " in key):
        raise ValidationError(
            {"Idempotency-Key": ["At most 255 visible ASCII characters, such as a UUID."]}
        )
    return key


class ReportViewSet(
    AsyncReportsViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """List, request, follow, download, cancel and regenerate your own reports."""

    serializer_class = ReportSerializer
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ReportFilter
    ordering_fields = ["created_at", "updated_at", "completed_at", "status", "priority", "title"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[Report]:
        # Only the requester's own reports: another user's id is a 404.
        return Report.objects.for_user(self.request.user)

    def get_serializer_class(self) -> Any:
        if self.action in ("create",):
            return ReportCreateSerializer
        return ReportSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ReportCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        idempotency_key = idempotency_key_of(request)
        # A broker that is down leaves the report pending ("Waiting for the
        # queue") for the sweeper: still a 201.
        result = services.request_or_reuse_report(
            user=request.user,
            validated=True,
            idempotency_key=idempotency_key,
            **serializer.validated_data,
        )
        report = result.report
        data = ReportSerializer(report, context=self.get_serializer_context()).data
        # "created": a new report (201); "reused" / "joined": an identical
        # completed / running one of yours (200), made anew with "force": true;
        # "replayed": the one this Idempotency-Key created (201 again).
        data["outcome"] = result.outcome
        location = reverse("django_async_reports:report-detail", kwargs={"pk": report.pk})
        headers = {"Location": request.build_absolute_uri(location)}
        if result.outcome == "replayed":
            headers["Idempotent-Replayed"] = "true"
        created = result.outcome in ("created", "replayed")
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(data, status=code, headers=headers)

    @action(detail=False, methods=["get"])
    def types(self, request: Request) -> Response:
        """The registered report types, their columns and parameters."""
        return Response(
            [
                {
                    "report_type": g.report_type,
                    "label": g.get_label(),
                    "description": g.description,
                    "columns": g.get_columns(),
                    "parameters": describe_parameters(g),
                    # JSON Schema, as in the OpenAPI document; None without drf-spectacular.
                    "parameters_schema": parameters_schema(g),
                    "formats": g.get_formats(),
                    "default_format": services.resolve_format(g.report_type, None),
                    "charts": [{"kind": c.kind, "title": c.title} for c in g.charts],
                    "retention_seconds": g.get_retention_seconds(),
                }
                # Only the types this user may run (their generator's has_permission).
                for g in permissions.runnable_types(request.user)
            ]
        )

    @action(detail=False, methods=["get"])
    def recent(self, request: Request) -> Response:
        """Your latest reports, newest first."""
        reports = self.get_queryset().order_by("-created_at")[: int(report_settings.RECENT_LIMIT)]
        return Response(self.get_serializer(reports, many=True).data)

    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str | None = None) -> Response:
        """Status, percentage, rows, rate and time left: from the cache while running, else the row.

        A running report's answer comes from the progress cache alone, with no
        database query, when the cache entry is fresh and names the requester
        as the owner (``progress_answers``); otherwise from the row, with the
        cache's fresher figures merged in. A completed report answers its final
        row count, its average rate and ``eta_seconds`` 0.
        """
        cached = cached_entry(pk)
        if not object_rules_apply(self.get_permissions()):
            answer = from_cache(pk, cached, request.user)
            if answer is not None:
                return Response(answer)
        # The row, by primary key among the user's own: the list's filters and
        # ordering (query parameters) have nothing to say about one report.
        report = get_object_or_404(self.get_queryset(), pk=pk)
        self.check_object_permissions(request, report)
        self.object = report
        return Response(from_row(report, cached))

    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> Any:
        """The report file, once completed; 404 before."""
        report = self.get_object()
        if report.status != Report.Status.COMPLETED or not report.result_file:
            raise Http404("The report is not ready: only completed reports can be downloaded.")
        if report.is_expired:
            return Response(
                {
                    "detail": "This report has expired and its file is deleted; "
                    "regenerate it for a fresh copy.",
                    "expires_at": report.expires_at,
                },
                status=status.HTTP_410_GONE,
            )
        return download_response(report, request)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel an active report; a finished one is a 409 (InvalidReportState, see .base)."""
        report = self.get_object()
        services.cancel_report(report)
        return Response({"message": "Report cancelled.", "status": report.status})

    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str | None = None) -> Response:
        """A new report with the same type, title and parameters."""
        report = self.get_object()
        if report.report_type not in registry:
            return Response(
                {"report_type": [f'"{report.report_type}" is no longer a known report type.']},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            new = services.regenerate_report(report, user=request.user)
        except ValidationError as exc:
            raise ValidationError({"parameters": exc.detail}) from exc
        data = ReportSerializer(new, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)
