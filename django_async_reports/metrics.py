"""The Prometheus endpoint: reports, failures, durations, queues, schedule lag.

Needs ``prometheus-client`` (the ``metrics`` extra), imported at scrape time
only: without it the package works as before and this view answers 501.
Values are read at scrape time from the database (:mod:`.services.observability`)
and from the broker (a passive declare per queue, :func:`routing.queue_states`),
so every web process gives the same answer, with no shared directory.
Metric names and suggested alerts: docs/operations.md.
"""

from __future__ import annotations

import hmac
import importlib
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import routing
from .conf import report_settings
from .services import observability

logger = logging.getLogger(__name__)

PREFIX = "django_async_reports"
INSTALL_HINT = (
    "The metrics endpoint needs prometheus-client: pip install 'django-async-reporting[metrics]'.\n"
)


def prometheus() -> ModuleType | None:
    """``prometheus_client``, or None when it is not installed."""
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:
        return None


class ReportsCollector:
    """A prometheus_client collector that reads the database and the broker at each scrape."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            f"{PREFIX}_source_up",
            "Whether the source was read at this scrape (1) or not (0).",
            labels=["source"],
        )
        try:
            stats = observability.report_stats()
        except Exception:
            logger.warning("Metrics: the database could not be read.", exc_info=True)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield from report_families(stats)
        try:
            yield from queue_families()
        except Exception:
            logger.warning("Metrics: the broker could not be read.", exc_info=True)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
        yield up


def _gauge(name: str, doc: str, value: float) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _histogram(name: str, doc: str, histogram: observability.Histogram) -> Any:
    from prometheus_client.core import GaugeHistogramMetricFamily

    buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in histogram.buckets]
    return GaugeHistogramMetricFamily(
        f"{PREFIX}_{name}", doc, buckets=buckets, gsum_value=histogram.total
    )


def report_families(stats: observability.ReportStats) -> Iterator[Any]:
    """The metric families of :class:`observability.ReportStats`."""
    from prometheus_client.core import GaugeMetricFamily

    window = f"over the last METRICS_WINDOW ({report_settings.METRICS_WINDOW} s)"
    reports = GaugeMetricFamily(
        f"{PREFIX}_reports", "Report rows by status and type.", labels=["status", "report_type"]
    )
    for status, report_type, count in stats.by_status_and_type:
        reports.add_metric([status, report_type], count)
    yield reports
    yield _gauge(
        "reports_stuck",
        "Processing reports with no heartbeat for their hard time limit + STUCK_MARGIN.",
        stats.stuck,
    )
    yield _gauge(
        "unsent_steps",
        "Report steps recorded but not confirmed sent to the broker past the grace period.",
        stats.unsent_steps,
    )
    failures = GaugeMetricFamily(
        f"{PREFIX}_failed_reports", f"Reports failed {window}, by reason.", labels=["reason"]
    )
    for reason, count in stats.failures_by_reason.items():
        failures.add_metric([reason], count)
    yield failures
    yield _histogram(
        "generation_duration_seconds",
        f"Seconds from start to completion of the reports completed {window}.",
        stats.duration,
    )
    yield _histogram("report_rows", f"Rows of the reports completed {window}.", stats.rows)
    yield _histogram(
        "report_file_bytes", f"File sizes of the reports completed {window}.", stats.file_bytes
    )
    yield _gauge(
        "bytes_written", f"Bytes of report files written {window}.", stats.file_bytes.total
    )
    yield _gauge("retries", f"Retries of the reports finished {window}.", stats.retries)
    yield _histogram(
        "schedule_lag_seconds",
        f"Seconds between a schedule run's due time and its start, runs started {window}.",
        stats.schedule_lag,
    )
    yield _gauge(
        "schedule_overdue_seconds",
        "Seconds the most overdue enabled schedule has waited past its next run (0: none).",
        stats.schedule_overdue_seconds,
    )
    yield _gauge(
        "metrics_window_seconds",
        "The window the windowed metrics cover (METRICS_WINDOW).",
        float(report_settings.METRICS_WINDOW),
    )


def queue_families() -> Iterator[Any]:
    """Ready messages and consumers of each report queue, and the dead-letter queue's depth."""
    from prometheus_client.core import GaugeMetricFamily

    queues = [report_settings.QUEUE, report_settings.HIGH_PRIORITY_QUEUE]
    dead_letter = report_settings.DEAD_LETTER_QUEUE
    names = [*queues, dead_letter] if dead_letter else queues
    states = routing.queue_states(names, float(report_settings.HEALTH_CHECK_TIMEOUT))
    messages = GaugeMetricFamily(
        f"{PREFIX}_queue_messages", "Messages ready in a report queue.", labels=["queue"]
    )
    consumers = GaugeMetricFamily(
        f"{PREFIX}_queue_consumers", "Consumers of a report queue.", labels=["queue"]
    )
    for name in queues:
        state = states[name]
        if state.exists:  # not declared yet: no worker has started
            messages.add_metric([name], state.messages)
            consumers.add_metric([name], state.consumers)
    yield messages
    yield consumers
    if dead_letter:
        dead = GaugeMetricFamily(
            f"{PREFIX}_dead_lettered_messages",
            "Messages in the dead-letter queue (DEAD_LETTER_QUEUE).",
            labels=["queue"],
        )
        state = states[dead_letter]
        dead.add_metric([dead_letter], state.messages)
        yield dead


def authorized(request: HttpRequest) -> bool:
    """Whether the request carries ``METRICS_TOKEN`` (always, when none is set)."""
    token = report_settings.METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics in Prometheus' text format; 501 without prometheus-client."""
    client = prometheus()
    if client is None:
        return HttpResponse(INSTALL_HINT, status=501, content_type="text/plain")
    if not authorized(request):
        response = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(ReportsCollector())
    return HttpResponse(client.generate_latest(registry), content_type=client.CONTENT_TYPE_LATEST)
