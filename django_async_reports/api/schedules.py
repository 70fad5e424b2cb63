"""The schedules REST API: ``/schedules/`` under the reports mount.

Same rules as the reports API (:mod:`.base`): a user only sees their own
schedules (another user's id is a 404), permission and authentication classes
come from the ``ASYNC_REPORTS`` settings, and every change goes through
:mod:`django_async_reports.schedules`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from .. import schedules
from ..models import ReportSchedule, ScheduleExecution
from ..services import limits, permissions
from .base import AsyncReportsViewMixin
from .schedule_serializers import (
    ReportScheduleSerializer,
    ScheduleExecutionSerializer,
    ToggleSerializer,
    attach_last_executions,
    schedules_of,
)


class ScheduleViewSet(AsyncReportsViewMixin, viewsets.ModelViewSet):
    """List, create, change, delete, run and toggle your own report schedules."""

    serializer_class = ReportScheduleSerializer
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_fields = ["enabled", "frequency", "report_type"]
    ordering_fields = ["created_at", "updated_at", "next_run_at", "last_run_at", "title"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[ReportSchedule]:
        # Only the requester's own schedules: another user's id is a 404.
        return schedules_of(self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        context["owner"] = self.request.user
        # The webhook secret is shown on a single schedule, never in lists.
        context["include_secret"] = self.action != "list"
        return context

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        items = list(page) if page is not None else list(queryset)
        attach_last_executions(items)
        data = self.get_serializer(items, many=True).data
        if page is not None:
            return self.get_paginated_response(data)
        return Response(data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        schedule = serializer.save()
        location = reverse("django_async_reports:schedule-detail", kwargs={"pk": schedule.pk})
        headers = {"Location": request.build_absolute_uri(location)}
        return Response(serializer.data, status=status.HTTP_201_CREATED, headers=headers)

    def perform_destroy(self, instance: ReportSchedule) -> None:
        # Its executions go with it; the reports it produced stay with their owner.
        instance.delete()

    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request: Request, pk: str | None = None) -> Response:
        """Generate the report at once, recorded as a manual execution: 201 with it."""
        schedule = self.get_object()
        # Asked first, so the answer is a 403 or a 429 rather than a failed run.
        permissions.check_may_run(request.user, schedule.report_type)
        permissions.check_priority(request.user, schedule.priority)
        limits.check_active_place(request.user)
        # Parameters that no longer validate, or a broker that refuses the
        # report, give a failed execution (its error says why), still a 201.
        execution = schedules.run_now(schedule)
        execution = ScheduleExecution.objects.select_related("report").get(pk=execution.pk)
        data = ScheduleExecutionSerializer(execution, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def toggle(self, request: Request, pk: str | None = None) -> Response:
        """Enable or disable: an empty body flips the flag, ``{"enabled": bool}`` sets it."""
        schedule = self.get_object()
        body = ToggleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        enabled = body.validated_data.get("enabled", not schedule.enabled)
        try:
            schedule = schedules.set_enabled(schedule, enabled)
        except ValidationError as exc:
            # A timing that no longer computes (say, a time zone since removed).
            raise ValidationError({"non_field_errors": exc.detail}) from exc
        next_run_at = schedule.next_run_at
        return Response(
            {
                "id": str(schedule.pk),
                "enabled": schedule.enabled,
                "next_run_at": (
                    serializers.DateTimeField().to_representation(next_run_at)
                    if next_run_at is not None
                    else None
                ),
                "message": "Schedule enabled." if schedule.enabled else "Schedule disabled.",
            }
        )

    @action(detail=True, methods=["get"])
    def executions(self, request: Request, pk: str | None = None) -> Response:
        """The schedule's runs, newest first, paginated."""
        schedule = self.get_object()
        queryset = schedule.executions.select_related("report").order_by(
            "-due_at", "-created_at", "-pk"
        )
        page = self.paginate_queryset(queryset)
        context = self.get_serializer_context()
        if page is None:
            return Response(ScheduleExecutionSerializer(queryset, many=True, context=context).data)
        serializer = ScheduleExecutionSerializer(page, many=True, context=context)
        return self.get_paginated_response(serializer.data)
