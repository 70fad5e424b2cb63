"""The metrics endpoint: values read from the real database and broker, parsed back."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.utils import timezone
from kombu import Connection, Exchange, Producer, Queue
from prometheus_client.parser import text_string_to_metric_families

import tests.celery_app  # noqa: F401  (the test Celery app, current: the test broker)
from django_async_reports.conf import report_settings
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.factories import ReportFactory
from tests.helpers import make_schedule, numbers_report, set_reports

pytestmark = pytest.mark.django_db

URL = "/ops/metrics/"
P = "django_async_reports_"


def scrape(client, **headers):
    response = client.get(URL, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(P + name, tuple(sorted(labels.items())))]


def failed(user, message, **fields):
    return ReportFactory(
        user=user, status=Report.Status.FAILED, error_message=message,
        completed_at=timezone.now(), **fields,
    )  # fmt: skip


def test_reports_by_status_type_failures_and_histograms(client, user, captured_dispatches):
    small, large = numbers_report(user, count=3), numbers_report(user, count=12)
    ReportFactory(user=user)  # pending
    failed(user, "Timeout", retry_count=2)
    failed(user, "The database could not be reached. Reference: 0a1b2c3d.")
    failed(user, "The worker running this report was lost 3 times (killed, ...)")
    failed(user, "Post-processing failed: The file could not be stored. Reference: 1.")
    failed(user, "No sales were recorded in that period.")  # a generator's ReportError

    samples = scrape(client)

    assert value(samples, "reports", status="completed", report_type="numbers") == 2
    assert value(samples, "reports", status="pending", report_type="numbers") == 1
    assert value(samples, "reports", status="failed", report_type="numbers") == 5
    for reason, count in {
        "timeout": 1, "database": 1, "worker_lost": 1, "post_processing": 1, "other": 1,
        "service": 0, "storage": 0, "internal": 0, "invalid_parameters": 0,
    }.items():  # fmt: skip
        assert value(samples, "failed_reports", reason=reason) == count, reason
    assert value(samples, "retries") == 2
    # Rows: 3 and 12, in the buckets <= 10 (one) and <= 100 (both).
    assert value(samples, "report_rows_bucket", le="10.0") == 1
    assert value(samples, "report_rows_bucket", le="100.0") == 2
    assert value(samples, "report_rows_gcount") == 2
    assert value(samples, "report_rows_gsum") == 15
    sizes = [r.result_data["file_size"] for r in (small, large)]
    assert value(samples, "report_file_bytes_gsum") == sum(sizes) > 0
    assert value(samples, "bytes_written") == sum(sizes)
    assert value(samples, "generation_duration_seconds_gcount") == 2
    assert value(samples, "generation_duration_seconds_bucket", le="+Inf") == 2
    assert value(samples, "generation_duration_seconds_bucket", le="60.0") == 2
    assert value(samples, "reports_stuck") == 0
    assert value(samples, "source_up", source="database") == 1
    assert value(samples, "metrics_window_seconds") == 3600


def test_stuck_and_unsent_reports(client, user):
    stuck = ReportFactory(user=user, status=Report.Status.PROCESSING)
    running = ReportFactory(user=user, status=Report.Status.PROCESSING)
    hard_limit = report_settings.time_limit
    old = timezone.now() - timedelta(seconds=hard_limit + report_settings.STUCK_MARGIN + 60)
    Report.objects.filter(pk=stuck.pk).update(updated_at=old)
    ReportFactory(user=user, next_step="generate", next_step_at=timezone.now() - timedelta(hours=1))

    samples = scrape(client)

    assert value(samples, "reports_stuck") == 1
    assert value(samples, "unsent_steps") == 1
    assert value(samples, "reports", status="processing", report_type="numbers") == 2
    assert running.pk != stuck.pk


def test_schedule_lag_and_overdue(client, user):
    schedule = make_schedule(user)
    now = timezone.now()
    for late in (2, 40, 400):
        ScheduleExecution.objects.create(
            schedule=schedule, due_at=now - timedelta(seconds=late), started_at=now
        )
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=now - timedelta(minutes=10))

    samples = scrape(client)

    assert value(samples, "schedule_lag_seconds_gcount") == 3
    assert value(samples, "schedule_lag_seconds_bucket", le="5.0") == 1
    assert value(samples, "schedule_lag_seconds_bucket", le="60.0") == 2
    assert value(samples, "schedule_lag_seconds_bucket", le="900.0") == 3
    assert value(samples, "schedule_lag_seconds_gsum") == pytest.approx(442, abs=1)
    assert 600 <= value(samples, "schedule_overdue_seconds") < 660


def test_window_default_override(client, user, settings):
    ReportFactory(
        user=user, status=Report.Status.FAILED, error_message="Timeout",
        completed_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    assert value(scrape(client), "failed_reports", reason="timeout") == 0  # default: 1 hour

    set_reports(settings, METRICS_WINDOW=3 * 3600)
    samples = scrape(client)
    assert value(samples, "failed_reports", reason="timeout") == 1
    assert value(samples, "metrics_window_seconds") == 3 * 3600


@pytest.fixture
def own_queues(settings):
    """Report queues (and a dead-letter queue) of this test's own, deleted after it."""
    prefix = f"{django_settings.QUEUE_PREFIX}_metrics"
    set_reports(
        settings,
        QUEUE=f"{prefix}_reports",
        HIGH_PRIORITY_QUEUE=f"{prefix}_high",
        EXCHANGE=f"{prefix}_exchange",
        DEAD_LETTER_QUEUE=f"{prefix}_dlq",
    )
    from django_async_reports.routing import report_queues

    with Connection(django_settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        queues = [*report_queues(), Queue(f"{prefix}_dlq", Exchange(""), durable=False)]
        for queue in queues:
            bound = queue(channel)
            bound.declare()
            bound.purge()  # what an interrupted run left
        try:
            yield conn, queues
        finally:
            cleanup = conn.channel()
            for queue in queues:
                queue(cleanup).delete()
            report_queues()[0].exchange(cleanup).delete()


def test_queue_depth_consumers_and_dead_letters(client, own_queues):
    conn, (normal, high, dead) = own_queues
    producer = Producer(conn.channel())
    for n in range(3):
        producer.publish({"n": n}, exchange=normal.exchange, routing_key=normal.routing_key)
    for n in range(2):
        producer.publish({"n": n}, exchange="", routing_key=dead.name)
    consumer_channel = conn.channel()
    tag = consumer_channel.basic_consume(queue=high.name, callback=lambda message: None)
    try:
        samples = scrape(client)
    finally:
        consumer_channel.basic_cancel(tag)

    assert value(samples, "queue_messages", queue=normal.name) == 3
    assert value(samples, "queue_consumers", queue=normal.name) == 0
    assert value(samples, "queue_messages", queue=high.name) == 0
    assert value(samples, "queue_consumers", queue=high.name) == 1
    assert value(samples, "dead_lettered_messages", queue=dead.name) == 2
    assert value(samples, "source_up", source="broker") == 1


def test_no_dead_letter_metric_without_the_setting(client):
    assert report_settings.DEAD_LETTER_QUEUE is None
    samples = scrape(client)
    assert not [key for key in samples if key[0] == P + "dead_lettered_messages"]


def test_broker_down_still_answers_with_the_database(client, user, monkeypatch):
    monkeypatch.setitem(current_app.conf, "broker_url", "amqp://guest:pw@127.0.0.1:1//")
    ReportFactory(user=user)

    samples = scrape(client)

    assert value(samples, "source_up", source="broker") == 0
    assert value(samples, "source_up", source="database") == 1
    assert value(samples, "reports", status="pending", report_type="numbers") == 1
    assert not [key for key in samples if key[0] == P + "queue_messages"]


def test_token_off_by_default_then_required(client, settings):
    assert report_settings.METRICS_TOKEN is None
    assert client.get(URL).status_code == 200

    set_reports(settings, METRICS_TOKEN="a-long-random-token-of-the-host")
    refused = client.get(URL)
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    wrong = client.get(URL, HTTP_AUTHORIZATION="Bearer another-token-entirely")
    assert wrong.status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer a-long-random-token-of-the-host")


def test_without_prometheus_client_the_view_says_what_to_install(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError

    response = client.get(URL)

    assert response.status_code == 501
    assert b"pip install 'django-async-reporting[metrics]'" in response.content
    assert client.get("/ops/health/").status_code == 200  # the rest works without it
