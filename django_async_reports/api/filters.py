"""django-filter filter set of the reports list."""

from __future__ import annotations

import django_filters

from ..models import Report


class ReportFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Report.Status.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Report.Priority.choices)
    report_type = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Report
        fields = ["status", "priority", "report_type", "created_after", "created_before"]
