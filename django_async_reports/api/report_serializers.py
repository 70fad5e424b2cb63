"""DRF serializers of the reports API.

The rules a report request shares with schedules (a registered report type, a
parameters object within ``MAX_PARAMETERS_BYTES``, a webhook URL that may be
reached) are those of :mod:`django_async_reports.schedules.validation`.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from .. import services
from ..delivery import webhook_secret_for_user
from ..models import Report
from ..registry import registry
from ..services.rules import (
    check_parameters_object,
    check_priority,
    check_report_type,
    check_requester_email,
    check_webhook_url,
)


class ReportSerializer(serializers.ModelSerializer):
    """Full, read-only representation of a report."""

    report_type_label = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    progress_url = serializers.SerializerMethodField()
    webhook_secret = serializers.SerializerMethodField(
        help_text="Signs this report's webhooks (Standard Webhooks); null without a webhook."
    )
    # A CharField, not the model's URLField: "" (no webhook) is no URI.
    webhook_url = serializers.CharField(
        read_only=True, help_text="Where the report's webhooks go; empty without one."
    )
    expired = serializers.SerializerMethodField(
        help_text="True once expires_at has passed: the file is gone or about to be deleted."
    )

    class Meta:
        model = Report
        fields = [
            "id",
            "report_type",
            "report_type_label",
            "title",
            "parameters",
            "status",
            "priority",
            "format",
            "compress",
            "progress",
            "progress_message",
            "result_data",
            "error_message",
            "retry_count",
            "send_email",
            "webhook_url",
            "webhook_secret",
            "celery_task_id",
            "started_at",
            "completed_at",
            "expires_at",
            "expired",
            "created_at",
            "updated_at",
            "progress_url",
            "download_url",
        ]
        read_only_fields = fields

    def get_report_type_label(self, obj: Report) -> str:
        return registry.label_for(obj.report_type)

    def _url(self, name: str, obj: Report) -> str:
        path = reverse(f"django_async_reports:{name}", kwargs={"pk": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_webhook_secret(self, obj: Report) -> str | None:
        if not obj.webhook_url:
            return None
        return webhook_secret_for_user(obj.user_id)

    def get_progress_url(self, obj: Report) -> str:
        return self._url("report-progress", obj)

    def get_expired(self, obj: Report) -> bool:
        return obj.is_expired

    def get_download_url(self, obj: Report) -> str | None:
        if obj.status != Report.Status.COMPLETED or not obj.result_file or obj.is_expired:
            return None
        return self._url("report-download", obj)


class ReportCreateSerializer(serializers.Serializer):
    """Validates a report request; ``parameters`` by the generator's own serializer."""

    report_type = serializers.CharField(max_length=64)
    title = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=Report.Priority.choices, default="normal")
    parameters = serializers.JSONField(required=False, default=dict)
    send_email = serializers.BooleanField(required=False, default=False)
    webhook_url = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="An http(s) URL whose host resolves to public addresses only.",
    )
    format = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        help_text="csv, xlsx, json, ndjson or pdf (as the type offers); DEFAULT_FORMAT if omitted.",
    )
    compress = serializers.BooleanField(
        required=False, default=False, help_text="Store and deliver the file gzip-compressed."
    )
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Generate anew even when an identical recent report could be reused.",
    )

    def validate_webhook_url(self, value: str) -> str:
        return check_webhook_url(value, resolve_host=True)

    def _user(self) -> Any:
        return getattr(self.context.get("request"), "user", None)

    def validate_report_type(self, value: str) -> str:
        return check_report_type(value, self._user())

    def validate_priority(self, value: str) -> str:
        return check_priority(value, self._user())

    def validate_parameters(self, value: Any) -> dict[str, Any]:
        return check_parameters_object(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        generator_class = registry.get(attrs["report_type"])
        request = self.context.get("request")
        try:
            attrs["parameters"] = generator_class.clean_parameters(
                attrs.get("parameters") or {},
                {"user": getattr(request, "user", None), "request": request},
            )
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"parameters": exc.detail}) from exc
        attrs["format"] = services.resolve_format(attrs["report_type"], attrs.get("format") or None)
        try:
            check_requester_email(attrs.get("send_email", False), getattr(request, "user", None))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"send_email": exc.detail}) from exc
        return attrs
