"""What every viewset of the API shares: access rules, pagination, and domain errors as HTTP.

* Permission and authentication classes come from the ``ASYNC_REPORTS``
  settings (``PERMISSION_CLASSES``, ``AUTHENTICATION_CLASSES``; ``None`` keeps
  DRF's defaults), read at request time so ``override_settings`` applies.
* Pages hold ``PAGE_SIZE`` items, ``?page_size=`` up to ``MAX_PAGE_SIZE``.
* The service layer's exceptions become answers here, as DRF's own exceptions
  do, so actions never build error responses: ``InvalidReportState`` is a
  ``409`` (``{"message", "status"}``, the status the object is in); a per-user
  cap reached (``LimitExceeded``) a ``429`` with ``Retry-After``; a type or
  priority the user may not use, met past the serializers (regenerate,
  run-now), a ``403``. A broker
  that is down is no error of the API's: the report is accepted and waits,
  pending, for the sweeper to queue it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from rest_framework import parsers, status
from rest_framework.exceptions import ParseError, PermissionDenied, Throttled
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from ..conf import report_settings
from ..exceptions import (
    IdempotencyKeyReused,
    InvalidReportState,
    LimitExceeded,
    PriorityNotAllowed,
    ReportTypeNotAllowed,
)
from .throttles import throttles_for

__all__ = ["AsyncReportsViewMixin", "ReportPagination"]


class ReportPagination(PageNumberPagination):
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int | None:
        self.page_size = int(report_settings.PAGE_SIZE)
        self.max_page_size = int(report_settings.MAX_PAGE_SIZE)
        return super().get_page_size(request)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested too deep for Python's decoder is a 400, not a 500."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None


class AsyncReportsViewMixin:
    """Put first in the bases of the package's viewsets (before DRF's ``GenericViewSet``).

    Actions load their object with ``get_object()``, which keeps it as
    ``self.object`` so that an error answer can describe it.
    """

    pagination_class: Any = ReportPagination
    object: Model | None = None

    def get_permissions(self) -> list[Any]:
        return [cls() for cls in report_settings.PERMISSION_CLASSES]

    def get_parsers(self) -> list[Any]:
        # The host's parsers, DRF's JSON parser swapped for the one above.
        return [
            JSONParser() if type(parser) is parsers.JSONParser else parser
            for parser in super().get_parsers()  # type: ignore[misc]
        ]

    def get_throttles(self) -> list[Any]:
        # The host's DRF throttles, plus ours on the actions that start work.
        own = throttles_for(getattr(self, "action", None))
        return [*super().get_throttles(), *own]  # type: ignore[misc]

    def get_authenticators(self) -> list[Any]:
        classes = report_settings.AUTHENTICATION_CLASSES
        if classes is None:
            return super().get_authenticators()  # type: ignore[misc]
        return [cls() for cls in classes]

    def get_object(self) -> Any:
        self.object = super().get_object()  # type: ignore[misc]
        return self.object

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, InvalidReportState):
            # The transition does not apply to the object's current status.
            data: dict[str, Any] = {"message": str(exc)}
            if self.object is not None and hasattr(self.object, "status"):
                data["status"] = self.object.status
            return Response(data, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, IdempotencyKeyReused):
            return Response({"detail": str(exc)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        if isinstance(exc, LimitExceeded):
            # DRF's own 429: its handler adds the Retry-After header.
            exc = Throttled(wait=exc.retry_after, detail=str(exc))
        elif isinstance(exc, (ReportTypeNotAllowed, PriorityNotAllowed)):
            exc = PermissionDenied(str(exc))
        return super().handle_exception(exc)  # type: ignore[misc]
