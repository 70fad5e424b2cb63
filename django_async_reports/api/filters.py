"""django-filter filter set of the reports list."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from ..models import Report


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, turned to UTC.

    PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 (and Python) allow,
    which would make a valid-looking query a 500; in UTC any offset is fine,
    and a moment that leaves the representable years is a 400.
    """

    def to_python(self, value: Any) -> datetime.datetime | None:
        try:
            parsed = super().to_python(value)
            if parsed is None or parsed.tzinfo is None:
                return parsed
            return parsed.astimezone(datetime.timezone.utc)
        except OverflowError:
            raise ValidationError(
                "Enter a date and time between the years 1 and 9999.", code="invalid"
            ) from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class ReportFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Report.Status.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Report.Priority.choices)
    report_type = django_filters.CharFilter()
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Report
        fields = ["status", "priority", "report_type", "created_after", "created_before"]
