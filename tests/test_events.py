"""One structured log record per lifecycle event, on logger ``django_async_reports.events``."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core import mail
from pythonjsonlogger.json import JsonFormatter

from django_async_reports import delivery, events, progress, services, tasks
from django_async_reports.delivery import webhooks
from tests.factories import ReportFactory
from tests.helpers import scheduled_report, set_reports

pytestmark = pytest.mark.django_db

LOGGER = "django_async_reports.events"


@pytest.fixture
def logged(caplog):
    """The event records logged during the test, as (event, record) pairs."""
    caplog.set_level(logging.INFO, logger=LOGGER)

    def records(event=None):
        found = [r for r in caplog.records if r.name == LOGGER]
        return [r for r in found if event is None or r.event == event]

    return records


def fields(record):
    return {key: getattr(record, key) for key in events.FIELDS}


def test_log_event_carries_the_fields_as_extra_and_reads_well(logged, user):
    report = ReportFactory(user=user, report_type="numbers", attempt=2)
    events.log_event(events.COMPLETED, report, duration=1.25, rows=1234, channel="email")
    [record] = logged()
    assert fields(record) == {
        "event": "completed",
        "report_id": str(report.pk),
        "report_type": "numbers",
        "user_id": user.pk,
        "attempt": 2,
        "duration": 1.25,
        "rows": 1234,
    }
    assert record.channel == "email"
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"Report {report.pk} (numbers) completed via email: 1,234 rows in 1.2 s (attempt 2)"
    )


def test_a_report_logs_requested_queued_claimed_milestones_completed_delivered(
    logged, user, captured_dispatches, django_capture_on_commit_callbacks
):
    user.email = "alice@example.com"
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        report = services.request_report(
            user=user,
            report_type="numbers",
            parameters={"count": 8},
            send_email=True,
        )
    claimed = services.claim_report(report.pk)
    services.generate(claimed)
    services.post_process(report.pk)
    services.notify_report(report.pk)

    assert [r.event for r in logged()] == [
        "requested",
        "queued",
        "claimed",
        "progress",
        "progress",
        "progress",
        "completed",
        "delivered",
    ]
    for record in logged():
        assert record.report_id == str(report.pk)
        assert (record.report_type, record.user_id) == ("numbers", user.pk)
    assert logged("requested")[0].attempt == 0
    assert logged("claimed")[0].attempt == 1
    assert [(r.percent, r.rows, r.total) for r in logged("progress")] == [
        (25, 2, 8),
        (50, 4, 8),
        (75, 6, 8),
    ]
    assert all(r.duration >= 0 for r in logged("progress"))
    [completed] = logged("completed")
    report.refresh_from_db()
    assert (completed.rows, completed.duration) == (8, report.duration_seconds)
    assert completed.duration is not None
    [delivered] = logged("delivered")
    assert (delivered.channel, delivered.rows) == ("email", 8)
    assert len(mail.outbox) == 1


def test_a_report_of_unknown_size_logs_no_milestone(logged, user):
    report = ReportFactory(user=user, status="processing")
    tracker = progress.ProgressTracker(report.pk, None, report=report)
    tracker.advance(10_000)
    assert logged("progress") == []


def test_a_fast_report_logs_each_milestone_it_passes_once(logged, user):
    report = ReportFactory(user=user, status="processing")
    tracker = progress.ProgressTracker(report.pk, 10, report=report)
    tracker.advance(8)
    tracker.advance(2)
    assert [r.percent for r in logged("progress")] == [25, 50, 75]


def test_failed_is_a_warning_with_duration_and_error(logged, user):
    report = ReportFactory(user=user)
    services.claim_report(report.pk)
    services.fail_report(report.pk, "The data source is down.")
    [failed] = logged("failed")
    assert failed.levelno == logging.WARNING
    assert failed.error == "The data source is down."
    assert failed.duration is not None and failed.duration >= 0
    assert failed.attempt == 1


def test_cancelled(logged, user, captured_dispatches):
    report = ReportFactory(user=user, status="processing")
    services.cancel_report(report)
    [cancelled] = logged("cancelled")
    assert (cancelled.report_id, cancelled.user_id) == (str(report.pk), user.pk)


def test_no_queued_event_when_the_broker_refuses(logged, user, monkeypatch):
    def refuse(report, step, *, countdown=None):
        raise ConnectionError("broker down")

    monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)
    report = ReportFactory(user=user)
    services.outbox.send(report, services.outbox.GENERATE)
    assert logged("queued") == []


def test_webhook_sent_is_delivered(logged, user, receiver, settings):
    set_reports(settings, WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOWED_PORTS=None)
    report = ReportFactory(user=user, status="processing", webhook_url=receiver.url())
    report = services.fail_report(report.pk, "Boom.")
    message_id = webhooks.message_id_for(report, "report.failed")
    result = tasks.deliver_webhook.apply(args=[str(report.pk), "report.failed", message_id, 1])
    assert result.result["outcome"] == "sent"
    delivered = [r for r in logged("delivered") if r.channel == "webhook"]
    assert len(delivered) == 1
    assert (delivered[0].webhook_event, delivered[0].delivery_attempt) == ("report.failed", 1)
    assert delivered[0].status_code == 204  # the receiver's answer, as docs/logging.md says
    assert delivered[0].report_id == str(report.pk)


def test_a_scheduled_email_sent_is_delivered_with_its_execution(logged, smtp, owner):
    schedule, report, execution = scheduled_report(owner)
    delivery.deliver(report)
    [delivered] = logged("delivered")
    assert (delivered.channel, delivered.rows) == ("email", 3)
    assert (delivered.schedule_id, delivered.execution_id) == (str(schedule.pk), execution.pk)
    delivery.deliver(report)  # sent already: nothing more is delivered, nor logged
    assert len(logged("delivered")) == 1


def test_a_json_formatter_puts_the_fields_in_the_line(user):
    """python-json-logger, as docs/logging.md configures it, writes the extra fields as keys."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("{levelname}{name}{message}", style="{"))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        report = ReportFactory(user=user, report_type="numbers", attempt=1)
        events.log_event(events.COMPLETED, report, duration=2.5, rows=10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    line = json.loads(stream.getvalue().strip())
    assert line == {
        "levelname": "INFO",
        "name": LOGGER,
        "message": f"Report {report.pk} (numbers) completed: 10 rows in 2.5 s (attempt 1)",
        "event": "completed",
        "report_id": str(report.pk),
        "report_type": "numbers",
        "user_id": user.pk,
        "attempt": 1,
        "duration": 2.5,
        "rows": 10,
    }
