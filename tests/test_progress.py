import pytest
from django.test import override_settings

from django_async_reports import progress
from django_async_reports.models import Report
from tests.factories import ReportFactory

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@override_settings(ASYNC_REPORTS={"PROGRESS_INTERVAL": 1.0, "CANCEL_CHECK_INTERVAL": 1.0})
def test_throttled_to_interval_and_step(user):
    report = ReportFactory(user=user, status="processing")
    clock = Clock()
    states = []
    tracker = progress.ProgressTracker(
        report.pk, 1000, task_state=lambda p, m: states.append(p), clock=clock
    )
    for _ in range(100):  # 100 x 5 rows in 0.5 s: no write
        clock.now += 0.005
        assert tracker.advance(5)
    assert states == []
    clock.now += 1
    assert tracker.advance(5)
    assert states == [50]
    report.refresh_from_db()
    assert report.progress == 50
    assert report.progress_message == "Processed 505 of 1,000 rows"
    assert progress.read_cache(report.pk)["progress"] == 50
    # Due in time but not moved by 1 %: no write.
    clock.now += 2
    tracker.advance(1)
    assert states == [50]


def test_percent_caps_at_99_and_unknown_total(user):
    tracker = progress.ProgressTracker(ReportFactory(user=user).pk, 10)
    tracker.rows = 10
    assert tracker.percent() == 99
    unknown = progress.ProgressTracker(ReportFactory(user=user).pk, None)
    unknown.rows = 1234
    assert unknown.percent() == 0
    assert unknown.message() == "Processed 1,234 rows"


def test_progress_never_goes_backwards(user):
    report = ReportFactory(user=user, status="processing", progress=60)
    progress.write_cache(report.pk, progress=60)
    tracker = progress.ProgressTracker(report.pk, 100)
    assert tracker.publish(10, "restarted")
    report.refresh_from_db()
    assert report.progress == 60
    assert progress.read_cache(report.pk)["progress"] == 60


def test_publish_reports_cancellation(user):
    report = ReportFactory(user=user, status="processing")
    tracker = progress.ProgressTracker(report.pk, 100)
    assert tracker.publish(1, "ok")
    Report.objects.filter(pk=report.pk).update(status="cancelled")
    assert tracker.publish(2, "no") is False
    assert tracker.still_processing() is False


@override_settings(ASYNC_REPORTS={"PROGRESS_INTERVAL": 100.0, "CANCEL_CHECK_INTERVAL": 1.0})
def test_cancel_is_seen_between_progress_writes(user):
    report = ReportFactory(user=user, status="processing")
    clock = Clock()
    tracker = progress.ProgressTracker(report.pk, None, clock=clock)
    Report.objects.filter(pk=report.pk).update(status="cancelled")
    clock.now += 0.5
    assert tracker.advance(1) is True  # not looked yet
    clock.now += 0.6
    assert tracker.advance(1) is False
