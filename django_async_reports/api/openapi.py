"""drf-spectacular's view of the API: errors per endpoint, one request schema per report type.

Imported by ``AppConfig.ready()`` only when drf-spectacular is installed (the
``openapi`` extra); the API itself never imports it. The extensions here
register themselves with drf-spectacular on import and leave the viewsets
untouched: :class:`ReportViewExtension` and :class:`ScheduleViewExtension`
hand drf-spectacular annotated subclasses, and :class:`ReportCreateExtension`
builds the create request from the registry at generation time, so a
generator registered late is documented too.

The create request body is a ``oneOf`` with a ``discriminator`` on
``report_type``: one ``ReportRequest_<type>`` component per registered
generator, its ``report_type`` an ``enum`` of that one value and its
``parameters`` the JSON Schema that ``GET /types/`` returns for the type
(:func:`~.parameters_schema.parameters_schema`).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiViewExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from ..registry import registry
from .parameters_schema import parameters_schema
from .report_serializers import ReportSerializer
from .schedule_serializers import ReportScheduleSerializer, ScheduleExecutionSerializer

__all__ = [
    "ReportCreateExtension",
    "ReportViewExtension",
    "ScheduleViewExtension",
    "report_request_component_name",
]

# -- error answers, shared by the endpoints ---------------------------------------------
_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_VALIDATION = {
    "type": "object",
    "description": "Field name (or non_field_errors) -> messages; nested for parameters.",
    "additionalProperties": {},
}
_CONFLICT = {
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "status": {"type": "string", "description": "The status the object is in."},
    },
    "required": ["message"],
}
_GONE = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time", "nullable": True},
    },
    "required": ["detail"],
}

BAD_REQUEST = OpenApiResponse(_VALIDATION, description="Invalid input: messages per field.")
UNAUTHENTICATED = OpenApiResponse(_DETAIL, description="No or invalid credentials.")
FORBIDDEN = OpenApiResponse(
    _DETAIL,
    description="Not allowed: PERMISSION_CLASSES, or a report type or priority this user "
    "may not use (regenerate, run-now). Some authentication schemes answer 403 for "
    "missing credentials too.",
)
NOT_FOUND = OpenApiResponse(
    _DETAIL, description="No such object among yours (another user's id is a 404 too)."
)
PAGE_NOT_FOUND = OpenApiResponse(_DETAIL, description="No such page (?page= past the last).")
CONFLICT = OpenApiResponse(_CONFLICT, description="Not possible in the object's current status.")
TOO_MANY = OpenApiResponse(
    _DETAIL,
    description="A per-user cap (MAX_ACTIVE_REPORTS_PER_USER...) or rate (THROTTLE_RATES) "
    "reached; the Retry-After header says how many seconds to wait.",
)
IDEMPOTENCY_REUSED = OpenApiResponse(
    _DETAIL, description="This Idempotency-Key was used with a different request."
)
GONE = OpenApiResponse(_GONE, description="The report has expired and its file is deleted.")

# Every endpoint may answer these: authentication, then permission, then throttles.
_ALWAYS = {401: UNAUTHENTICATED, 403: FORBIDDEN, 429: TOO_MANY}
_ON_OBJECT = {**_ALWAYS, 404: NOT_FOUND}


def _errors(*extra: int, on_object: bool = False) -> dict[int, OpenApiResponse]:
    known = {
        400: BAD_REQUEST,
        404: PAGE_NOT_FOUND,
        409: CONFLICT,
        410: GONE,
        422: IDEMPOTENCY_REUSED,
    }
    base = _ON_OBJECT if on_object else _ALWAYS
    return {**base, **{code: known[code] for code in extra}}


def _paginated(item_schema: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["count", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": "string", "nullable": True, "format": "uri"},
            "previous": {"type": "string", "nullable": True, "format": "uri"},
            "results": {"type": "array", "items": item_schema},
        },
    }


# -- report responses that are not the report itself ------------------------------------
class ReportCreatedSerializer(ReportSerializer):
    """The report, with what the request did (the create answer)."""

    outcome = serializers.ChoiceField(
        choices=["created", "reused", "joined", "replayed"],
        help_text="created / replayed: 201; reused / joined an identical report of yours: 200.",
    )

    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "outcome"]
        read_only_fields = fields


_TYPES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "report_type": {"type": "string"},
            "label": {"type": "string"},
            "description": {"type": "string"},
            "columns": {"type": "array", "items": {}},
            "parameters": {
                "type": "object",
                "description": "Field name -> type, required, help_text, choices, default.",
                "additionalProperties": {"type": "object"},
            },
            "parameters_schema": {
                "type": "object",
                "nullable": True,
                "description": "JSON Schema (OpenAPI 3.0 dialect) of the parameters; "
                "null without drf-spectacular.",
            },
            "formats": {"type": "array", "items": {"type": "string"}},
            "default_format": {"type": "string"},
            "charts": {"type": "array", "items": {"type": "object"}},
            "retention_seconds": {"type": "integer", "nullable": True},
        },
        "required": ["report_type", "label", "parameters", "parameters_schema", "formats"],
    },
}
_PROGRESS = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"type": "string"},
        "progress": {"type": "integer"},
        "message": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time", "nullable": True},
        "completed_at": {"type": "string", "format": "date-time", "nullable": True},
        "updated_at": {"type": "string", "format": "date-time", "nullable": True},
    },
    "required": ["id", "status", "progress"],
}
_CANCELLED = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "status": {"type": "string"}},
    "required": ["message", "status"],
}
_TOGGLED = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "enabled": {"type": "boolean"},
        "next_run_at": {"type": "string", "format": "date-time", "nullable": True},
        "message": {"type": "string"},
    },
    "required": ["id", "enabled", "next_run_at", "message"],
}
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="At most 255 visible ASCII characters (a UUID): a retried request with the "
    "same key and body replays the first answer instead of creating another report.",
)

_RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again.",
)


def _documented(**kwargs: Any) -> dict[str, Any]:
    """``extend_schema``'s arguments, with the Retry-After header every 429 carries."""
    kwargs["parameters"] = [*kwargs.get("parameters", []), _RETRY_AFTER]
    return kwargs


def _schema_view(tag: str, actions: dict[str, dict[str, Any]]) -> Any:
    """``extend_schema_view`` of ``actions``, tagged ``tag``, operation ids ``<tag>_<action>``."""
    return extend_schema_view(
        **{
            name: extend_schema(tags=[tag], operation_id=f"{tag}_{name}", **kwargs)
            for name, kwargs in actions.items()
        }
    )


def _reading_docs(
    plural: str, serializer: type[serializers.Serializer]
) -> dict[str, dict[str, Any]]:
    """The list and retrieve actions of a viewset of the user's own ``plural``."""
    return {
        "list": _documented(
            summary=f"Your {plural}",
            responses={200: serializer(many=True), **_errors(400, 404)},
        ),
        "retrieve": _documented(
            summary=f"One of your {plural}",
            responses={200: serializer, **_errors(on_object=True)},
        ),
    }


_REPORT_DOCS = {
    **_reading_docs("reports", ReportSerializer),
    "create": _documented(
        summary="Request a report",
        parameters=[_IDEMPOTENCY_KEY],
        responses={
            201: ReportCreatedSerializer,
            200: ReportCreatedSerializer,
            **_errors(400, 422),
        },
    ),
    "types": _documented(
        summary="The report types you may run",
        responses={200: OpenApiResponse(_TYPES), **_errors()},
    ),
    "recent": _documented(
        summary="Your latest reports",
        responses={
            200: OpenApiResponse(
                {"type": "array", "items": {"$ref": "#/components/schemas/Report"}}
            ),
            **_errors(),
        },
    ),
    "progress": _documented(
        summary="Status and percentage",
        responses={200: OpenApiResponse(_PROGRESS), **_errors(on_object=True)},
    ),
    "download": _documented(
        summary="The report's file",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                {"type": "string", "format": "binary"},
                description="The file, with its own Content-Type (text/csv, ...).",
            ),
            302: OpenApiResponse(
                description="To a short-lived presigned URL (S3 storage with presigned "
                "downloads): the Location header."
            ),
            **_errors(410, on_object=True),
        },
    ),
    "cancel": _documented(
        summary="Cancel an active report",
        request=None,
        responses={200: OpenApiResponse(_CANCELLED), **_errors(409, on_object=True)},
    ),
    "regenerate": _documented(
        summary="A fresh copy of a report",
        request=None,
        responses={201: ReportSerializer, **_errors(400, on_object=True)},
    ),
}

_SCHEDULE_DOCS = {
    **_reading_docs("schedules", ReportScheduleSerializer),
    "create": _documented(
        summary="Create a schedule",
        responses={201: ReportScheduleSerializer, **_errors(400)},
    ),
    "update": _documented(
        summary="Replace a schedule",
        responses={200: ReportScheduleSerializer, **_errors(400, on_object=True)},
    ),
    "partial_update": _documented(
        summary="Change a schedule",
        responses={200: ReportScheduleSerializer, **_errors(400, on_object=True)},
    ),
    "destroy": _documented(
        summary="Delete a schedule", responses={204: None, **_errors(on_object=True)}
    ),
    "run_now": _documented(
        summary="Run a schedule now",
        request=None,
        responses={201: ScheduleExecutionSerializer, **_errors(on_object=True)},
    ),
    "toggle": _documented(
        summary="Enable or disable a schedule",
        responses={200: OpenApiResponse(_TOGGLED), **_errors(400, on_object=True)},
    ),
    "executions": _documented(
        summary="A schedule's runs",
        parameters=[
            OpenApiParameter("page", int, description="A page number within the results."),
            OpenApiParameter("page_size", int, description="Results per page (MAX_PAGE_SIZE)."),
        ],
        responses={
            200: OpenApiResponse(_paginated({"$ref": "#/components/schemas/ScheduleExecution"})),
            **_errors(on_object=True),
        },
    ),
}


class _DocumentedViewExtension(OpenApiViewExtension):
    """A viewset with each action's answers, errors included: ``actions``, tagged ``tag``.

    Matches no view itself (no ``target_class``); its subclasses name theirs.
    """

    tag: str
    actions: dict[str, dict[str, Any]]

    def view_replacement(self) -> Any:
        @_schema_view(self.tag, self.actions)
        class Documented(self.target_class):  # type: ignore[name-defined]
            pass

        return Documented


class ReportViewExtension(_DocumentedViewExtension):
    """The reports viewset with each action's answers, errors included."""

    target_class = "django_async_reports.api.reports.ReportViewSet"
    tag = "reports"
    actions = _REPORT_DOCS


class ScheduleViewExtension(_DocumentedViewExtension):
    """The schedules viewset with each action's answers, errors included."""

    target_class = "django_async_reports.api.schedules.ScheduleViewSet"
    tag = "schedules"
    actions = _SCHEDULE_DOCS


def report_request_component_name(report_type: str) -> str:
    """The component holding the create request of ``report_type``."""
    return "ReportRequest_" + re.sub(r"[^A-Za-z0-9._-]", "_", report_type)


class ReportCreateExtension(OpenApiSerializerExtension):
    """The create request: one schema per registered report type, told apart by report_type."""

    target_class = "django_async_reports.api.report_serializers.ReportCreateSerializer"

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        common = auto_schema._map_basic_serializer(self.target, direction)
        mapping = {}
        for generator in registry:
            name = report_request_component_name(generator.report_type)
            schema = {
                **common,
                "properties": {
                    **common["properties"],
                    "report_type": {"type": "string", "enum": [generator.report_type]},
                    "parameters": parameters_schema(generator),
                },
                "required": sorted({*common.get("required", []), "report_type"}),
            }
            if generator.description:
                schema["description"] = str(generator.description)
            component = ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
            )
            auto_schema.registry.register_on_missing(component)
            mapping[generator.report_type] = component.ref["$ref"]
        return {
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "report_type", "mapping": mapping},
        }
