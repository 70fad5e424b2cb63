"""Task wrappers run in-process with ``apply()`` (the worker paths are in tests/e2e)."""

from unittest import mock

import pytest
from django.db import OperationalError

from django_async_reports import delivery, tasks
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.factories import ReportFactory

pytestmark = pytest.mark.django_db


def test_unreachable_database_at_claim_is_retried_then_fails_the_report(user):
    report = ReportFactory(user=user)
    with mock.patch(
        "django_async_reports.services.claim_report", side_effect=OperationalError("down")
    ) as claim:
        result = tasks.generate_report.apply(args=[str(report.pk)])
    # The first try and DATABASE_RETRIES retries (eager: their countdowns are not waited).
    assert claim.call_count == 1 + tasks.DATABASE_RETRIES
    assert isinstance(result.result, OperationalError)
    # Retries exhausted: on_failure marks it failed (here the database is back).
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    assert report.error_message.startswith("The database could not be reached. Reference: ")
    assert report.error_detail.startswith("Reference: ")
    assert "OperationalError: down" in report.error_detail


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
    # Users read words and a reference; the admin-only detail says what broke.
    assert report.error_message.startswith("The report could not be generated because of")
    assert "1 values for 3 columns" in report.error_detail
    assert "Traceback" in report.error_detail


def test_a_format_library_missing_on_the_worker_fails_without_retry(user, monkeypatch):
    import sys

    # The web server had xlsxwriter; this worker does not: no retry installs it.
    monkeypatch.setitem(sys.modules, "xlsxwriter", None)
    report = ReportFactory(user=user, format="xlsx")
    result = tasks.generate_report.apply(args=[str(report.pk)])
    assert isinstance(result.result, ImportError)
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    assert report.retry_count == 0
    assert "xlsxwriter" not in report.error_message
    assert "xlsxwriter" in report.error_detail


def test_a_generation_applied_on_its_own_finishes_the_report(user, mailoutbox, monkeypatch):
    """The host's test idiom: ``generate_report.apply`` with no broker completes and notifies.

    The steps it hands over to run in-process too: a publish would fail here,
    as it would in a host's test run without a broker.
    """

    def no_broker(*args, **kwargs):
        raise ConnectionRefusedError("no broker in this test")

    monkeypatch.setattr("django_async_reports.publisher.connection", no_broker)
    report = ReportFactory(
        user=user, parameters={"count": 4, "delay": 0, "text": ""}, send_email=True
    )
    result = tasks.generate_report.apply(args=[str(report.pk)])
    assert result.result["rows"] == 4
    report.refresh_from_db()
    assert (report.status, report.progress, report.next_step) == ("completed", 100, "")
    assert report.result_data["row_count"] == 4
    assert report.result_file.name and report.notified_at is not None
    assert len(mailoutbox) == 1
    # Redelivered steps find the work done: nothing twice.
    assert tasks.post_process_report.apply(args=[str(report.pk)]).result["status"] == "skipped"
    assert tasks.send_report_notification.apply(args=[str(report.pk)]).result["notified"] is False
    assert len(mailoutbox) == 1


def test_chain_steps_in_process(user, captured_dispatches):
    """Each step on its own, the hand-overs captured (as a worker receives them)."""
    report = ReportFactory(user=user, parameters={"count": 4, "delay": 0, "text": ""})
    assert tasks.generate_report.apply(args=[str(report.pk)]).result["rows"] == 4
    assert [step for _, step, _ in captured_dispatches.steps] == ["post_process"]
    assert tasks.post_process_report.apply(args=[str(report.pk)]).result["status"] == "completed"
    assert tasks.send_report_notification.apply(args=[str(report.pk)]).result["notified"] is True
    # A redelivered notification step notifies no one twice.
    assert tasks.send_report_notification.apply(args=[str(report.pk)]).result["notified"] is False


def test_hard_time_limit_fails_the_report(user):
    from celery.exceptions import TimeLimitExceeded

    report = ReportFactory(user=user, status="processing")
    tasks.generate_report.on_failure(
        TimeLimitExceeded(61), report.celery_task_id, (str(report.pk),), {}, None
    )
    report.refresh_from_db()
    assert (report.status, report.error_message) == ("failed", "Timeout")


def test_on_failure_leaves_finished_reports_alone(user):
    report = ReportFactory(user=user, status="completed")
    tasks.post_process_report.on_failure(RuntimeError("late"), "x", (str(report.pk),), {}, None)
    report.refresh_from_db()
    assert report.status == "completed"


# -- send_report_notification gives up after its retries -------------------------------
def test_notification_abandons_delivery_once_its_retries_are_spent(user):
    report = ReportFactory(user=user, status="completed")
    with (
        mock.patch(
            "django_async_reports.services.notify_report",
            side_effect=ConnectionRefusedError("smtp down"),
        ) as notify,
        mock.patch("django_async_reports.delivery.abandon") as abandon,
    ):
        result = tasks.send_report_notification.apply(args=[str(report.pk)])
    assert notify.call_count == 4  # the first try and max_retries (3) retries
    assert isinstance(result.result, ConnectionRefusedError)
    [call] = abandon.call_args_list
    assert call.args[0].pk == report.pk


def test_notification_that_succeeds_on_a_retry_abandons_nothing(user):
    report = ReportFactory(user=user, status="completed")
    with (
        mock.patch(
            "django_async_reports.services.notify_report",
            side_effect=[ConnectionRefusedError("smtp down")] * 3 + [True],
        ) as notify,
        mock.patch("django_async_reports.delivery.abandon") as abandon,
    ):
        result = tasks.send_report_notification.apply(args=[str(report.pk)])
    assert notify.call_count == 4
    assert result.result == {"report_id": str(report.pk), "notified": True}
    abandon.assert_not_called()


def test_an_error_while_abandoning_is_logged_not_raised(user, caplog):
    report = ReportFactory(user=user, status="completed")
    with (
        mock.patch(
            "django_async_reports.services.notify_report",
            side_effect=ConnectionRefusedError("smtp down"),
        ),
        mock.patch("django_async_reports.delivery.abandon", side_effect=RuntimeError("db")),
    ):
        result = tasks.send_report_notification.apply(args=[str(report.pk)])
    assert isinstance(result.result, ConnectionRefusedError)  # the delivery error, not ours
    assert "Could not settle the delivery" in caplog.text


def test_schedule_failure_notification_abandons_once_its_retries_are_spent(user):
    schedule = ReportSchedule.objects.create(
        owner=user, report_type="numbers", title="T", frequency="daily"
    )
    execution = ScheduleExecution.objects.create(
        schedule=schedule,
        due_at=schedule.created_at,
        status=ScheduleExecution.Status.FAILED,
        email_status=ScheduleExecution.Delivery.PENDING,
        error="Invalid parameters",
    )
    with (
        mock.patch(
            "django_async_reports.delivery.deliver_execution_failure",
            side_effect=ConnectionRefusedError("smtp down"),
        ) as deliver,
        mock.patch(
            "django_async_reports.delivery.abandon_execution_failure",
            wraps=delivery.abandon_execution_failure,
        ) as abandon,
    ):
        result = tasks.send_schedule_failure_notification.apply(args=[execution.pk])
    assert deliver.call_count == 4
    assert isinstance(result.result, ConnectionRefusedError)
    assert abandon.call_count == 1
    execution.refresh_from_db()
    assert execution.email_status == ScheduleExecution.Delivery.FAILED


def test_a_failing_result_backend_never_fails_the_run(user, monkeypatch, caplog):
    """Task states are written best effort, and not tried again for a minute after a failure."""
    calls = []

    def backend_down(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("result backend down")

    backend = tasks.generate_report.app.backend
    monkeypatch.setattr(backend, "store_result", backend_down)
    monkeypatch.setattr(backend, "mark_as_done", backend_down)
    monkeypatch.setattr(tasks, "_results_paused_until", 0.0)
    report = ReportFactory(user=user, report_type="paced", parameters={"count": 5, "delay": 0.05})
    result = tasks.generate_report.apply(args=[str(report.pk)])

    assert result.result["status"] == "generated", result.result
    assert len(calls) == 1  # the first write failed; the next ones were not tried
    assert "The Celery result backend failed (store_result)" in caplog.text
    report.refresh_from_db()
    # Applied in-process, the generation ran the later steps in-process too.
    assert (report.status, report.progress) == ("completed", 100)


@pytest.mark.parametrize("status", ["processing", "completed", "cancelled"])
def test_a_message_that_finds_its_report_taken_sends_nothing_further(
    user, status, captured_dispatches
):
    """Sent again at a higher priority (or by the sweeper), a report has two messages:
    the one that finds it claimed hands nothing over; the claimed run does."""
    report = ReportFactory(user=user, status=status)
    result = tasks.generate_report.apply(args=[str(report.pk)], task_id="message-a")
    assert result.result["status"] == "skipped"
    assert captured_dispatches.steps == []


def test_retries_without_the_database_back_off_for_about_five_minutes():
    countdowns = [tasks._database_retry_countdown(n) for n in range(tasks.DATABASE_RETRIES)]
    assert countdowns == [5, 10, 20, 40, 80, 160]
    assert 4 * 60 <= sum(countdowns) <= 6 * 60  # a restart or a failover, not RETRY_COUNTDOWN


def test_always_eager_completes_a_requested_report(user, django_capture_on_commit_callbacks):
    """``CELERY_TASK_ALWAYS_EAGER``: ``request_report`` runs every step in-process."""
    from django_async_reports import services

    app = tasks.generate_report.app
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            report = services.request_report(
                user=user, report_type="numbers", parameters={"count": 3}
            )
    finally:
        app.conf.task_always_eager = saved
    report.refresh_from_db()
    assert (report.status, report.progress) == ("completed", 100)
    assert report.result_data["row_count"] == 3


def test_the_documented_idiom_with_a_model_created_report(user):
    """The idiom of docs/how-to/testing-generators.md: ``generate_report.apply([report.id])``."""
    report = Report.objects.create(user=user, report_type="numbers", parameters={"count": 2})
    tasks.generate_report.apply(args=[report.id])
    report.refresh_from_db()
    assert report.status == "completed" and report.progress == 100
    assert report.result_data["row_count"] == 2
