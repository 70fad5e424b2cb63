"""Generators of the test suite, found by the package's real autodiscovery."""

from __future__ import annotations

import datetime
import os
import signal
import time
from decimal import Decimal

from django.core.cache import cache
from django.db import OperationalError
from rest_framework import serializers

from django_async_reports import Chart, ReportError, ReportGenerator, register

from .models import Sale, TypedRow


class SalesParameters(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()

    def validate(self, attrs):
        if attrs["start_date"] > attrs["end_date"]:
            raise serializers.ValidationError({"end_date": "Must not be before start_date."})
        return attrs


@register
class SalesReport(ReportGenerator):
    """The issue's example: rows scoped to the requesting user."""

    report_type = "sales"
    label = "Sales report"
    description = "Sales of the requesting user between two dates."
    parameters_class = SalesParameters
    columns = ["sale_id", "date", "customer", "amount"]

    def queryset(self, params):
        return Sale.objects.filter(
            owner=self.user, sold_on__range=(params["start_date"], params["end_date"])
        ).order_by("pk")

    def count(self, params):
        return self.queryset(params).count()

    def rows(self, params):
        for sale in self.queryset(params).iterator(chunk_size=2000):
            yield (sale.pk, sale.sold_on, sale.customer, sale.amount)

    def summary(self, params, row_count):
        return {"sales": row_count}


class NumbersParameters(serializers.Serializer):
    count = serializers.IntegerField(min_value=0, max_value=5_000_000, default=10)
    delay = serializers.FloatField(min_value=0, max_value=5, default=0)
    text = serializers.CharField(required=False, default="", allow_blank=True)


@register
class NumbersReport(ReportGenerator):
    """``count`` rows of numbers, ``delay`` seconds apart, with a text column."""

    report_type = "numbers"
    label = "Numbers"
    parameters_class = NumbersParameters
    columns = ["n", "square", "text"]
    chunk_size = 1

    def count(self, params):
        return params["count"]

    def rows(self, params):
        for n in range(1, params["count"] + 1):
            if params["delay"]:
                time.sleep(params["delay"])
            yield (n, n * n, params["text"])


@register
class PacedReport(NumbersReport):
    """Numbers at ``delay`` seconds a row with the default ``chunk_size`` (500), as a user's
    generator that calls an API per row would be written."""

    report_type = "paced"
    label = "Paced numbers"
    chunk_size = ReportGenerator.chunk_size


@register
class RawTextReport(NumbersReport):
    """Like numbers, but writes formula-looking text verbatim (opted out)."""

    report_type = "raw_text"
    neutralize_formulas = False


class FlakyParameters(serializers.Serializer):
    key = serializers.CharField()
    failures = serializers.IntegerField(min_value=0, max_value=10)


@register
class FlakyReport(ReportGenerator):
    """Fails its first ``failures`` runs (counted in the shared cache), then succeeds."""

    report_type = "flaky"
    parameters_class = FlakyParameters
    columns = ["attempt"]

    def rows(self, params):
        key = f"flaky:{params['key']}"
        cache.add(key, 0)
        attempt = cache.incr(key)
        if attempt <= params["failures"]:
            raise ConnectionError(f"transient failure {attempt}")
        yield (attempt,)


@register
class BrokenReport(ReportGenerator):
    """Always fails with a transient-looking error."""

    report_type = "broken"
    columns = ["never"]

    def rows(self, params):
        raise ConnectionError("the data source is down")
        yield  # pragma: no cover


@register
class UnreachableDatabaseReport(ReportGenerator):
    """Fails as a generator whose own database is down: the message names a host and an address."""

    report_type = "db_down"
    columns = ["never"]

    def rows(self, params):
        raise OperationalError("could not connect to server at 10.1.2.3 port 5432")
        yield  # pragma: no cover


@register
class RefusingReport(ReportGenerator):
    """Fails with a message meant for its requester (a ReportError)."""

    report_type = "refusing"
    columns = ["never"]

    def rows(self, params):
        raise ReportError("No sales were recorded in that period.")
        yield  # pragma: no cover


@register
class SleepyReport(ReportGenerator):
    """Sleeps past its 1-second soft time limit."""

    report_type = "sleepy"
    columns = ["never"]
    soft_time_limit = 1

    def rows(self, params):
        time.sleep(10)
        yield ("late",)


class CrashParameters(serializers.Serializer):
    key = serializers.CharField()


@register
class CrashOnceReport(ReportGenerator):
    """Kills its own worker process on the first run, as an OOM kill would."""

    report_type = "crash_once"
    parameters_class = CrashParameters
    columns = ["survived"]

    def rows(self, params):
        if cache.add(f"crash:{params['key']}", 1):
            os.kill(os.getpid(), signal.SIGKILL)
        yield ("yes",)


@register
class CrashAlwaysReport(ReportGenerator):
    """A poison report: kills its worker process on every run."""

    report_type = "crash_always"
    columns = ["never"]

    def rows(self, params):
        os.kill(os.getpid(), signal.SIGKILL)
        yield ("never",)


@register
class ChartedReport(ReportGenerator):
    """Sales per region with typed cells and charts over its rows and its summary."""

    report_type = "charted"
    label = "Charted sales"
    columns = ["region", "day", "orders", "revenue", "note"]
    charts = [
        Chart.bar("Revenue per region", category="region", values=["revenue"]),
        Chart.line("Orders per region", category="region", values=["orders"]),
        Chart.pie("Orders per status", summary_key="orders_by_status"),
    ]

    ROWS = [
        ("north", datetime.date(2026, 1, 5), 12, Decimal("1234.50"), "=SUM(A1:A2)"),
        ("south", datetime.date(2026, 1, 6), 7, Decimal("99.99"), "Zoë"),
        ("east", datetime.date(2026, 1, 7), 0, Decimal("0.00"), ""),
    ]

    def count(self, params):
        return len(self.ROWS)

    def rows(self, params):
        yield from self.ROWS

    def summary(self, params, row_count):
        return {
            "regions": row_count,
            "total_revenue": "1334.49",
            "orders_by_status": {"paid": 15, "shipped": 4},
        }


@register
class CsvOnlyReport(NumbersReport):
    """A type that restricts its formats."""

    report_type = "csv_only"
    label = "CSV or JSON only"
    formats = ["csv", "json"]


@register
class StaffOnlyReport(ReportGenerator):
    """Only staff may run it: ``has_permission`` for the security tests."""

    report_type = "staff_only"
    columns = ["secret"]

    @classmethod
    def has_permission(cls, user):
        return bool(user.is_authenticated and user.is_staff)

    def rows(self, params):
        yield ("for staff",)


class TypedRowsParameters(serializers.Serializer):
    note = serializers.CharField(required=False, default="", allow_blank=True)


#: The TypedRow fields of the "typed_rows" report, in its columns' order.
TYPED_FIELDS = [
    "flag",
    "number",
    "big",
    "amount",
    "tiny",
    "day",
    "moment",
    "clock",
    "label",
    "note",
    "key",
]


@register
class TypedRowsReport(ReportGenerator):
    """``rows()`` returns a values_list QuerySet: the CSV fast path's generator.

    With a ``note`` parameter, only the rows whose note is exactly that text.
    """

    report_type = "typed_rows"
    parameters_class = TypedRowsParameters
    columns = [name.capitalize() for name in TYPED_FIELDS]

    def queryset(self, params):
        rows = TypedRow.objects.order_by("pk")
        if params["note"]:
            rows = rows.filter(note=params["note"])
        return rows

    def count(self, params):
        return self.queryset(params).count()

    def rows(self, params):
        return self.queryset(params).values_list(*TYPED_FIELDS)


class PartitionedNumbersParameters(NumbersParameters):
    parts = serializers.IntegerField(min_value=0, max_value=64, default=0)
    # The run that reaches row ``crash_at`` kills its worker process, once (a lost worker).
    crash_at = serializers.IntegerField(min_value=0, default=0)


@register
class PartitionedNumbersReport(NumbersReport):
    """``numbers`` split in ``parts`` key ranges (0: not split), for the partitioned reports.

    The same generator with and without ``parts`` must write the same bytes.
    """

    report_type = "partitioned_numbers"
    parameters_class = PartitionedNumbersParameters
    chunk_size = 50

    def partitions(self, params):
        parts, count = params["parts"], params["count"]
        if not parts:
            return None
        bounds = [count * i // parts for i in range(parts + 1)]
        return [(bounds[i] + 1, bounds[i + 1] + 1) for i in range(parts)]  # [lo, hi)

    def rows(self, params, partition=None):
        lo, hi = partition if partition is not None else (1, params["count"] + 1)
        # What the end-to-end tests read: which process ran the part, and how far it got.
        seen = f"part:{getattr(self.report, 'pk', '')}:{lo}"
        for n in range(lo, hi):
            if n == params["crash_at"] and cache.add(f"crashed:{self.report.pk}", 1, 600):
                os.kill(os.getpid(), signal.SIGKILL)
            if params["delay"]:
                time.sleep(params["delay"])
                cache.set(seen, {"pid": os.getpid(), "row": n}, 600)
            yield (n, n * n, params["text"])

    def summary(self, params, row_count):
        return {"numbers": row_count}


class PartitionedSalesParameters(serializers.Serializer):
    parts = serializers.IntegerField(min_value=0, max_value=16, default=0)


@register
class PartitionedSalesReport(ReportGenerator):
    """The user's sales by primary-key ranges, as a QuerySet (CSV on PostgreSQL: COPY)."""

    report_type = "partitioned_sales"
    parameters_class = PartitionedSalesParameters
    columns = ["sale_id", "date", "customer", "amount"]

    def queryset(self, params):
        return Sale.objects.filter(owner=self.user).order_by("pk")

    def count(self, params):
        return self.queryset(params).count()

    def partitions(self, params):
        if not params["parts"]:
            return None
        keys = list(self.queryset(params).values_list("pk", flat=True))
        if not keys:
            return None
        step = -(-len(keys) // params["parts"])
        return [[keys[i], keys[min(i + step, len(keys)) - 1]] for i in range(0, len(keys), step)]

    def rows(self, params, partition=None):
        rows = self.queryset(params)
        if partition is not None:
            rows = rows.filter(pk__range=partition)
        return rows.values_list("pk", "sold_on", "customer", "amount")
