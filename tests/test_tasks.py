"""Task wrappers run in-process with ``apply()`` (the worker paths are in tests/e2e)."""

from unittest import mock

import pytest
from django.db import OperationalError

from django_async_reports import tasks
from django_async_reports.models import Report
from tests.factories import ReportFactory

pytestmark = pytest.mark.django_db


def test_unreachable_database_at_claim_is_retried_and_report_stays_pending(user):
    report = ReportFactory(user=user)
    with mock.patch(
        "django_async_reports.services.claim_report", side_effect=OperationalError("down")
    ) as claim:
        result = tasks.generate_report.apply(args=[str(report.pk)])
    assert claim.call_count == 4  # the first try and MAX_RETRIES retries
    assert isinstance(result.result, OperationalError)
    report.refresh_from_db()
    assert report.status == Report.Status.PENDING


def test_finished_report_is_skipped(user):
    report = ReportFactory(user=user, status="completed")
    result = tasks.generate_report.apply(args=[str(report.pk)])
    assert result.result == {"report_id": str(report.pk), "status": "skipped"}


def test_permanent_error_fails_without_retry(user, monkeypatch):
    monkeypatch.setattr(
        "tests.testapp.reports.NumbersReport.rows", lambda self, p: iter([(1,)])
    )  # one value for three columns: no retry can fix that
    report = ReportFactory(user=user)
    result = tasks.generate_report.apply(args=[str(report.pk)])
    assert isinstance(result.result, ValueError)
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    assert report.retry_count == 0
    assert "1 values for 3 columns" in report.error_message


def test_chain_steps_in_process(user):
    report = ReportFactory(user=user, parameters={"count": 4, "delay": 0, "text": ""})
    assert tasks.generate_report.apply(args=[str(report.pk)]).result["rows"] == 4
    assert tasks.post_process_report.apply(args=[str(report.pk)]).result["status"] == "completed"
    assert tasks.send_report_notification.apply(args=[str(report.pk)]).result["notified"] is True
    # A redelivered notification step notifies no one twice.
    assert tasks.send_report_notification.apply(args=[str(report.pk)]).result["notified"] is False
