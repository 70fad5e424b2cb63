"""What the metrics endpoint reports, read from the database at scrape time.

Reading the rows at each scrape, rather than counting in each process, gives
the same answer from any web process however many workers there are, and
needs no shared directory (prometheus_client's multiprocess mode). Counts of
finished work cover the last ``METRICS_WINDOW`` seconds: they are gauges (and
gauge histograms) of that window, not counters. Nothing here imports
prometheus_client: :mod:`..metrics` turns these values into metric families.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from .. import exceptions
from ..conf import report_settings
from ..models import Report, ReportSchedule, ScheduleExecution
from .outbox import publish_grace
from .publishing import generation_limits

Status = Report.Status

#: Upper bounds of the histograms' buckets (+Inf is added).
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
SCHEDULE_LAG_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 900, 3600)
ROWS_BUCKETS: tuple[float, ...] = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
BYTES_BUCKETS: tuple[float, ...] = (
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
)

#: The reasons failures are grouped by (a bounded label set), with the start of
#: the message each one stands for. Anything else is "other" (a generator's own
#: ReportError, a refusal...): never the message itself, which is unbounded.
FAILURE_REASONS: tuple[tuple[str, str], ...] = (
    ("timeout", "Timeout"),
    ("worker_lost", "The worker running this report was lost"),  # worker_lost_message
    ("invalid_parameters", "Invalid parameters"),
    ("post_processing", "Post-processing failed"),
    ("database", exceptions.DATABASE_UNREACHABLE),
    ("database", exceptions.DATABASE_ERROR),
    ("service", exceptions.SERVICE_UNREACHABLE),
    ("storage", exceptions.STORAGE_ERROR),
    ("internal", exceptions.INTERNAL_ERROR),
)
OTHER_REASON = "other"


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts ``(upper bound, count)``, +Inf last, and the sum of values."""

    buckets: list[tuple[float, int]]
    total: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


@dataclasses.dataclass(frozen=True)
class ReportStats:
    """Everything the metrics say about reports and schedules, at one moment."""

    by_status_and_type: list[tuple[str, str, int]]
    stuck: int
    unsent_steps: int
    failures_by_reason: dict[str, int]
    duration: Histogram
    rows: Histogram
    file_bytes: Histogram
    retries: int
    schedule_lag: Histogram
    schedule_overdue_seconds: float


def window_start(now: datetime) -> datetime:
    return now - timedelta(seconds=float(report_settings.METRICS_WINDOW))


def report_stats(now: datetime | None = None) -> ReportStats:
    """Read every value the metrics export (a handful of aggregate queries)."""
    now = now or timezone.now()
    since = window_start(now)
    completed = Report.objects.filter(status=Status.COMPLETED, completed_at__gte=since)
    finished = Report.objects.filter(status__in=Report.FINISHED_STATUSES, completed_at__gte=since)
    return ReportStats(
        by_status_and_type=counts_by_status_and_type(),
        stuck=stuck_count(now),
        unsent_steps=Report.objects.exclude(next_step="")
        .filter(next_step_at__lte=now - publish_grace())
        .count(),
        failures_by_reason=failures_by_reason(since),
        duration=_seconds_histogram(
            completed.exclude(started_at=None).annotate(
                value=ExpressionWrapper(F("completed_at") - F("started_at"), DurationField())
            ),
            DURATION_BUCKETS,
        ),
        rows=_number_histogram(completed, "row_count", ROWS_BUCKETS),
        file_bytes=_number_histogram(completed, "file_size", BYTES_BUCKETS),
        retries=int(finished.aggregate(n=Sum("retry_count"))["n"] or 0),
        schedule_lag=_seconds_histogram(
            ScheduleExecution.objects.filter(started_at__gte=since).annotate(
                value=ExpressionWrapper(F("started_at") - F("due_at"), DurationField())
            ),
            SCHEDULE_LAG_BUCKETS,
        ),
        schedule_overdue_seconds=schedule_overdue_seconds(now),
    )


def counts_by_status_and_type() -> list[tuple[str, str, int]]:
    """(status, report_type, count) of every report row, whatever its age."""
    rows = (
        Report.objects.order_by()
        .values_list("status", "report_type")
        .annotate(n=Count("pk"))
        .order_by("status", "report_type")
    )
    return [(status, report_type, n) for status, report_type, n in rows]


def stuck_count(now: datetime) -> int:
    """Processing reports with no heartbeat for their hard limit + ``STUCK_MARGIN``.

    The sweeper takes these back; a count that stays above 0 means it is not running.
    """
    margin = timedelta(seconds=int(report_settings.STUCK_MARGIN))
    processing = Report.objects.filter(status=Status.PROCESSING, next_step="")
    total = 0
    for report_type in processing.order_by().values_list("report_type", flat=True).distinct():
        limit = timedelta(seconds=generation_limits(report_type)[1])
        total += processing.filter(
            report_type=report_type, updated_at__lt=now - limit - margin
        ).count()
    return total


def failures_by_reason(since: datetime) -> dict[str, int]:
    """Reports failed since ``since``, by :data:`FAILURE_REASONS` (every reason, 0 included)."""
    reason = Case(
        *(When(error_message__startswith=text, then=Value(name)) for name, text in FAILURE_REASONS),
        default=Value(OTHER_REASON),
        output_field=CharField(),
    )
    counts = dict.fromkeys([*dict(FAILURE_REASONS), OTHER_REASON], 0)
    rows = (
        Report.objects.filter(status=Status.FAILED, completed_at__gte=since)
        .annotate(reason=reason)
        .order_by()
        .values_list("reason")
        .annotate(n=Count("pk"))
    )
    for name, n in rows:
        counts[name] = n
    return counts


def schedule_overdue_seconds(now: datetime) -> float:
    """How long the most overdue enabled schedule has waited past its next run (0 if none).

    Runs start at the scheduler's tick: above a tick or two, beat or the tick is down.
    """
    oldest = (
        ReportSchedule.objects.filter(enabled=True, next_run_at__lt=now)
        .order_by("next_run_at")
        .values_list("next_run_at", flat=True)
        .first()
    )
    return (now - oldest).total_seconds() if oldest else 0.0


def _seconds_histogram(rows: QuerySet, bounds: Sequence[float]) -> Histogram:
    """A histogram of the rows' ``value`` (a duration), counted in one query."""
    aggregates = {
        f"le_{i}": Count("pk", filter=Q(value__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(bounds)
    }
    result = rows.order_by().aggregate(**aggregates, n=Count("pk"), total=Sum("value"))
    total = result["total"].total_seconds() if result["total"] else 0.0
    return _histogram(result, bounds, total)


def _number_histogram(rows: QuerySet, key: str, bounds: Sequence[float]) -> Histogram:
    """A histogram of the integer ``result_data[key]`` of the rows that have it."""
    value = Cast(KeyTextTransform(key, "result_data"), BigIntegerField())
    rows = rows.annotate(value=value).exclude(value=None)
    aggregates = {
        f"le_{i}": Count("pk", filter=Q(value__lte=bound)) for i, bound in enumerate(bounds)
    }
    result = rows.order_by().aggregate(**aggregates, n=Count("pk"), total=Sum("value"))
    return _histogram(result, bounds, float(result["total"] or 0))


def _histogram(result: dict, bounds: Sequence[float], total: float) -> Histogram:
    buckets = [(float(bound), int(result[f"le_{i}"])) for i, bound in enumerate(bounds)]
    buckets.append((float("inf"), int(result["n"])))
    return Histogram(buckets=buckets, total=total)
