"""Rows, total, rate and time left: the tracker computes them, the cache carries them,
the API's ``progress`` action answers them (from the cache while running, the row else)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_async_reports import progress, services
from django_async_reports.models import Report
from tests.factories import ReportFactory
from tests.helpers import detail, numbers_report

pytestmark = pytest.mark.django_db

RATE_KEYS = ("rows", "total", "rows_per_second", "eta_seconds")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def rates(body):
    return tuple(body[key] for key in RATE_KEYS)


# -- the tracker -----------------------------------------------------------------------
def test_no_rate_nor_eta_before_the_first_row(user):
    tracker = progress.ProgressTracker(ReportFactory(user=user).pk, 1000, clock=Clock())
    assert tracker.snapshot() == {
        "rows": 0,
        "total": 1000,
        "rows_per_second": None,
        "eta_seconds": None,
    }


def test_rate_and_eta_from_rows_and_elapsed_time(user):
    clock = Clock()
    tracker = progress.ProgressTracker(ReportFactory(user=user).pk, 1000, clock=clock)
    clock.now += 4
    tracker.rows = 250
    # 250 rows in 4 s: 62.5 rows/s, 750 rows left: 12 s.
    assert tracker.snapshot() == {
        "rows": 250,
        "total": 1000,
        "rows_per_second": 62.5,
        "eta_seconds": 12,
    }
    clock.now += 0.1
    tracker.rows = 999
    assert tracker.eta_seconds() == 1  # rounded up: 0 only when every row is done
    tracker.rows = 1000
    assert tracker.eta_seconds() == 0


def test_unknown_total_has_a_rate_but_no_eta(user):
    clock = Clock()
    tracker = progress.ProgressTracker(ReportFactory(user=user).pk, None, clock=clock)
    clock.now += 2
    tracker.rows = 500
    assert tracker.snapshot() == {
        "rows": 500,
        "total": None,
        "rows_per_second": 250.0,
        "eta_seconds": None,
    }


def test_publish_writes_the_rates_to_the_cache(user, settings):
    report = ReportFactory(user=user, status="processing")
    clock = Clock()
    tracker = progress.ProgressTracker(report.pk, 100, clock=clock)
    clock.now += 10
    tracker.rows = 40
    assert tracker.publish(tracker.percent(), tracker.message())
    cached = progress.read_cache(report.pk)
    assert (cached["rows"], cached["total"], cached["rows_per_second"], cached["eta_seconds"]) == (
        40,
        100,
        4.0,
        15,
    )


# -- the API ---------------------------------------------------------------------------
def test_running_report_is_answered_from_the_cache_without_extra_queries(auth_client, user):
    report = ReportFactory(user=user, status="processing", progress=10)
    clock = Clock()
    tracker = progress.ProgressTracker(report.pk, 200, clock=clock)
    clock.now += 5
    tracker.rows = 50
    assert tracker.publish(tracker.percent(), tracker.message())
    with CaptureQueriesContext(connection) as queries:
        body = auth_client.get(detail(report, "progress")).json()
    assert (body["status"], body["progress"]) == ("processing", 25)
    assert rates(body) == (50, 200, 10.0, 15)
    # One read of the row (the owner's, by id) besides authentication: no query for the rates.
    sql = [q["sql"] for q in queries.captured_queries]
    report_reads = [q for q in sql if "django_async_reports_report" in q]
    assert len(report_reads) == 1, report_reads


def test_the_whole_run_through_the_services_reports_its_rows(auth_client, user):
    report = ReportFactory(user=user, parameters={"count": 5, "delay": 0.0, "text": ""})
    pending = auth_client.get(detail(report, "progress")).json()
    assert rates(pending) == (0, None, None, None)

    claimed = services.claim_report(report.pk)
    services.generate(claimed)
    finalising = auth_client.get(detail(report, "progress")).json()
    assert (finalising["status"], finalising["message"]) == ("processing", "Finalising")
    assert finalising["rows"] == 5 and finalising["total"] == 5
    assert finalising["eta_seconds"] == 0


def test_a_row_one_write_ahead_of_the_cache_answers_its_own_message(auth_client, user):
    # The worker updated the row and has not written the cache yet.
    report = ReportFactory(
        user=user, status="processing", progress=3, progress_message="Processed 9 of 300 rows"
    )
    progress.write_cache(report.pk, status="processing", progress=0, message="Generating")
    body = auth_client.get(detail(report, "progress")).json()
    assert (body["progress"], body["message"]) == (3, "Processed 9 of 300 rows")


def test_completed_report_answers_its_final_rows_rate_and_eta_zero(auth_client, user):
    report = numbers_report(user, count=7)
    started = timezone.now() - timedelta(seconds=2)
    Report.objects.filter(pk=report.pk).update(
        started_at=started, completed_at=started + timedelta(seconds=2)
    )
    body = auth_client.get(detail(report, "progress")).json()
    assert body["status"] == "completed"
    assert rates(body) == (7, 7, 3.5, 0)


def test_failed_and_cancelled_reports_have_no_rates(auth_client, user):
    for status in ("failed", "cancelled"):
        report = ReportFactory(user=user, status=status, progress=40)
        progress.write_cache(report.pk, status="processing", rows=40, total=100)
        body = auth_client.get(detail(report, "progress")).json()
        assert rates(body) == (None, None, None, None), status


def test_a_running_report_without_cache_entry_has_unknown_rates(auth_client, user):
    # The cache is down or was flushed: the row has no rows count; unknown is null, not 0.
    report = ReportFactory(user=user, status="processing", progress=30)
    body = auth_client.get(detail(report, "progress")).json()
    assert body["progress"] == 30
    assert rates(body) == (None, None, None, None)


def test_a_new_attempt_forgets_the_rates_of_the_previous_one(user):
    report = ReportFactory(user=user)
    progress.write_cache(report.pk, status="pending", rows=80, total=100, rows_per_second=9.0)
    services.claim_report(report.pk)
    cached = progress.read_cache(report.pk)
    assert (cached["rows"], cached["total"], cached["rows_per_second"], cached["eta_seconds"]) == (
        0,
        None,
        None,
        None,
    )


def test_another_users_report_progress_is_a_404(other_client, user):
    report = ReportFactory(user=user, status="processing")
    assert other_client.get(detail(report, "progress")).status_code == 404
