"""Errors in words for users; the exception, with its traceback, for admins and the log."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import IntegrityError, OperationalError
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from django_async_reports import ReportError, services, tasks
from django_async_reports.api.schedule_serializers import ScheduleExecutionSerializer
from django_async_reports.delivery import webhooks
from django_async_reports.exceptions import (
    DATABASE_ERROR,
    DATABASE_UNREACHABLE,
    INTERNAL_ERROR,
    MAX_ERROR_LENGTH,
    SERVICE_UNREACHABLE,
    STORAGE_ERROR,
    NotRegistered,
    explain,
)
from django_async_reports.models import Report
from tests.factories import ReportFactory
from tests.helpers import detail, set_reports

ADDRESS = "could not connect to server at 10.1.2.3 port 5432"
REFERENCE = re.compile(r" Reference: ([0-9a-f]{8})\.$")


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as the worker catches it."""
    try:
        raise exc
    except BaseException as caught:
        return caught


# -- explain(): one sentence per kind -------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "sentence"),
    [
        (OperationalError(ADDRESS), DATABASE_UNREACHABLE),
        (IntegrityError("duplicate key value violates unique constraint"), DATABASE_ERROR),
        (ConnectionError("db.internal:6379 refused"), SERVICE_UNREACHABLE),
        (TimeoutError("timed out talking to 10.0.0.8"), SERVICE_UNREACHABLE),
        (OSError(28, "No space left on device", "/srv/media/reports/1"), STORAGE_ERROR),
        (PermissionError(13, "Permission denied", "/srv/media"), STORAGE_ERROR),
        (KeyError("secret_column"), INTERNAL_ERROR),
        (RuntimeError("/home/app/settings.py line 3"), INTERNAL_ERROR),
    ],
)
def test_each_kind_reads_as_a_sentence_with_a_reference(exc, sentence):
    text = explain(raised(exc))

    assert text.message.startswith(sentence)
    match = REFERENCE.search(text.message)
    assert match and match.group(1) == text.reference
    # The detail has everything, for the admin and the log.
    assert text.detail.startswith(f"Reference: {text.reference}\n{type(exc).__name__}: ")
    assert "Traceback (most recent call last)" in text.detail
    assert str(exc) in text.detail
    assert str(exc) not in text.message


def test_broker_cache_and_storage_clients_by_package():
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    assert explain(KombuOperationalError("amqp://10.0.0.9")).message.startswith(SERVICE_UNREACHABLE)
    assert explain(RedisConnectionError("10.0.0.7:6379")).message.startswith(SERVICE_UNREACHABLE)
    from botocore.exceptions import EndpointConnectionError  # the s3 extra, in [test]

    error = EndpointConnectionError(endpoint_url="https://10.0.0.5:9000/bucket")
    assert explain(error).message.startswith(STORAGE_ERROR)


def test_messages_meant_for_users_are_shown_as_they_are():
    assert explain(ReportError("No sales were recorded in that period.")).message == (
        "No sales were recorded in that period."
    )
    assert explain(ValidationError({"count": ["A valid integer is required."]})).message == (
        'Invalid parameters: {"count": ["A valid integer is required."]}'
    )
    assert explain(NotRegistered("No report generator is registered as 'gone'.")).message == (
        "No report generator is registered as 'gone'."
    )
    assert explain(ReportError("x")).reference == ""


def test_prefix_and_length():
    text = explain(OSError("x" * 20_000), prefix="Post-processing failed: ")
    assert text.message.startswith(f"Post-processing failed: {STORAGE_ERROR}")
    assert len(text.detail) <= MAX_ERROR_LENGTH
    long_trace = explain(raised(RuntimeError("y" * 20_000)))
    assert len(long_trace.detail) <= MAX_ERROR_LENGTH


def test_report_error_is_public_and_permanent():
    from django_async_reports.exceptions import PERMANENT_ERRORS, AsyncReportsError

    assert issubclass(ReportError, AsyncReportsError)
    assert issubclass(ReportError, PERMANENT_ERRORS)


# -- a generator whose database is down ------------------------------------------------------
@pytest.fixture
def failed_db_report(user, settings, caplog):
    """A ``db_down`` report run by the task (eagerly), failed without retries."""
    set_reports(settings, MAX_RETRIES=0)
    report = ReportFactory(
        user=user, report_type="db_down", send_email=True, webhook_url="https://x.example/h"
    )
    tasks.generate_report.apply(args=[str(report.pk)])
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    return report


@pytest.mark.django_db
class TestAddressesStayInside:
    def test_api_answer(self, failed_db_report, auth_client):
        body = auth_client.get(detail(failed_db_report)).json()

        assert body["error_message"].startswith(DATABASE_UNREACHABLE + " Reference: ")
        assert "10.1.2.3" not in str(body)
        assert "error_detail" not in body

    def test_email(self, failed_db_report):
        services.notify(failed_db_report)

        [message] = mail.outbox
        assert f"Error: {failed_db_report.error_message}" in message.body
        assert "10.1.2.3" not in message.body
        assert "OperationalError" not in message.body

    def test_webhook_payload(self, failed_db_report):
        payload = webhooks.build_payload(failed_db_report, "report.failed")

        assert payload["data"]["error"] == failed_db_report.error_message
        assert "10.1.2.3" not in webhooks.encode(payload).decode()

    def test_log_and_admin_have_it_all(self, failed_db_report, admin_client, caplog):
        reference = REFERENCE.search(failed_db_report.error_message).group(1)
        assert f"OperationalError: {ADDRESS}" in failed_db_report.error_detail
        assert failed_db_report.error_detail.startswith(f"Reference: {reference}\n")
        # The log line carries the reference and the exception with its traceback.
        logged = caplog.get_records("setup")  # the fixture ran the task
        [record] = [r for r in logged if reference in r.getMessage()]
        assert ADDRESS in record.getMessage() and record.exc_info is not None

        page = admin_client.get(
            reverse("admin:django_async_reports_report_change", args=[failed_db_report.pk])
        )
        html = page.content.decode()
        assert ADDRESS in html
        assert "Traceback" in html
        # Found from the reference a user quotes.
        changelist = reverse("admin:django_async_reports_report_changelist")
        found = admin_client.get(changelist, {"q": reference})
        assert str(failed_db_report.pk) in found.content.decode()

    def test_report_error_reaches_the_user_as_written(self, user, settings):
        report = ReportFactory(user=user, report_type="refusing")
        tasks.generate_report.apply(args=[str(report.pk)])
        report.refresh_from_db()
        assert report.error_message == "No sales were recorded in that period."
        assert report.retry_count == 0
        assert "ReportError: No sales were recorded" in report.error_detail

    def test_a_retry_shows_words_meanwhile(self, user, captured_dispatches):
        report = ReportFactory(user=user, report_type="db_down")
        tasks.generate_report.apply(args=[str(report.pk)])
        report.refresh_from_db()
        assert report.status == Report.Status.PENDING  # retried
        assert report.error_message.startswith(DATABASE_UNREACHABLE)
        assert ADDRESS in report.error_detail

    def test_a_successful_retry_clears_both(self, user):
        report = ReportFactory(
            user=user, status="failed", error_message="x", error_detail="OperationalError: x"
        )
        services.retry_report(report)
        report.refresh_from_db()
        assert (report.error_message, report.error_detail) == ("", "")


@pytest.mark.django_db
def test_scheduled_runs_copy_the_detail_to_the_execution(owner, settings):
    from tests.helpers import make_email_schedule, make_report_execution

    set_reports(settings, MAX_RETRIES=0)
    schedule = make_email_schedule(owner, report_type="db_down")
    report = ReportFactory(user=owner, report_type="db_down")
    execution = make_report_execution(schedule, report)

    tasks.generate_report.apply(args=[str(report.pk)])

    execution.refresh_from_db()
    report.refresh_from_db()
    assert execution.error == report.error_message
    assert ADDRESS in execution.error_detail
    data = ScheduleExecutionSerializer(execution).data
    assert "error_detail" not in data and "10.1.2.3" not in str(data)
