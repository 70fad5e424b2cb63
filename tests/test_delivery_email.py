"""E-mail delivery, sent through Django's SMTP backend to a real aiosmtpd server on loopback."""

from __future__ import annotations

import datetime
import io
import smtplib

import pytest
from django.conf import settings as django_settings
from django.template.defaultfilters import floatformat
from django.test import override_settings

from django_async_reports import delivery, schedules, services, tasks
from django_async_reports.models import ReportSchedule, ScheduleExecution
from django_async_reports.storage import report_storage
from tests.factories import ReportFactory, UserFactory
from tests.helpers import (
    RECIPIENTS,
    csv_rows,
    expected_rows,
    make_email_schedule,
    make_report_execution,
    numbers_report,
    scheduled_report,
    set_reports,
)
from tests.loopback_servers import attachments, free_port, text_body

pytestmark = pytest.mark.django_db

Delivery = ScheduleExecution.Delivery


def email_status(execution) -> str:
    execution.refresh_from_db()
    return execution.email_status


# -- scheduled reports -------------------------------------------------------------
class TestScheduledCompleted:
    def test_recipients_get_the_csv_attached(self, smtp, owner):
        _schedule, report, execution = scheduled_report(owner)

        delivery.deliver(report)

        [received] = smtp.received
        assert sorted(received.rcpt_tos) == sorted(RECIPIENTS)
        message = received.message
        assert message["From"] == "reports@example.com"
        assert message["To"] == ", ".join(RECIPIENTS)
        assert message["Auto-Submitted"] == "auto-generated"
        # Due 07:00 UTC is 08:00 in Paris, on the schedule's date there.
        assert message["Subject"] == "Weekly numbers (2025-03-03)"
        [(filename, content_type, content)] = attachments(message)
        assert filename == report.result_file.name.rsplit("/", 1)[-1]
        assert filename.endswith(".csv")
        assert content_type == "text/csv"
        assert csv_rows(content) == expected_rows(3)
        body = text_body(message)
        assert "Run due 2025-03-03 08:00 CET." in body
        assert "Rows: 3" in body
        assert report.duration_seconds is not None
        assert f"Generated in {floatformat(report.duration_seconds, 1)} seconds." in body
        assert f"The file is attached: {filename}" in body
        assert f"/api/v1/reports/{report.pk}/download/" in body
        assert "olivia lists your address" in body
        assert email_status(execution) == Delivery.SENT

    def test_large_file_is_linked_not_attached(self, smtp, owner, settings):
        set_reports(
            settings, EMAIL_ATTACHMENT_MAX_BYTES=10, BASE_URL="https://reports.example.com/"
        )
        _schedule, report, execution = scheduled_report(owner)
        assert report.result_data["file_size"] > 10

        delivery.deliver(report)

        [received] = smtp.received
        assert attachments(received.message) == []
        body = text_body(received.message)
        assert "is too large to attach" in body
        assert (
            f"Download it (sign-in required): "
            f"https://reports.example.com/api/v1/reports/{report.pk}/download/" in body
        )
        assert email_status(execution) == Delivery.SENT

    def test_file_at_the_limit_is_attached(self, smtp, owner, settings):
        _schedule, report, _execution = scheduled_report(owner)
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=report.result_data["file_size"])

        delivery.deliver(report)

        [received] = smtp.received
        [(_name, _type, content)] = attachments(received.message)
        assert csv_rows(content) == expected_rows(3)

    def test_unreadable_file_is_linked_and_the_mail_says_so(self, smtp, owner):
        _schedule, report, execution = scheduled_report(owner)
        report_storage.delete(report.result_file.name)

        delivery.deliver(report)

        [received] = smtp.received
        assert attachments(received.message) == []
        body = text_body(received.message)
        assert "The file is NOT attached: the file could not be read." in body
        assert f"Download it (sign-in required): /api/v1/reports/{report.pk}/download/" in body
        assert email_status(execution) == Delivery.SENT

    def test_file_not_matching_its_checksum_is_not_attached(self, smtp, owner):
        _schedule, report, _execution = scheduled_report(owner)
        name = report.result_file.name
        report_storage.delete(name)
        report_storage.save(name, io.BytesIO(b"n,square,text\r\n1,1,tampered\r\n"))

        delivery.deliver(report)

        [received] = smtp.received
        assert attachments(received.message) == []
        assert "does not match its recorded checksum" in text_body(received.message)

    def test_skip_if_empty_sends_nothing(self, smtp, owner):
        _schedule, report, execution = scheduled_report(
            owner,
            count=0,
            schedule_fields={"skip_if_empty": True, "webhook_url": "http://127.0.0.1:9/hook"},
        )
        assert report.result_data["row_count"] == 0

        delivery.deliver(report)

        assert smtp.received == []
        execution.refresh_from_db()
        assert (execution.email_status, execution.webhook_status) == (
            Delivery.SKIPPED,
            Delivery.SKIPPED,
        )

    def test_empty_report_is_sent_without_skip_if_empty(self, smtp, owner):
        _schedule, report, _execution = scheduled_report(owner, count=0)

        delivery.deliver(report)

        [received] = smtp.received
        [(_name, _type, content)] = attachments(received.message)
        assert csv_rows(content) == expected_rows(0)
        assert "Rows: 0" in text_body(received.message)

    def test_no_email_unless_the_schedule_asks(self, smtp, owner):
        _schedule, report, execution = scheduled_report(
            owner, schedule_fields={"send_email": False}
        )
        delivery.deliver(report)
        assert smtp.received == []
        assert email_status(execution) == Delivery.NOT_REQUESTED

    def test_report_send_email_does_not_mail_the_owner_of_a_scheduled_report(self, smtp, owner):
        schedule = make_email_schedule(owner, send_email=False)
        report = numbers_report(owner, send_email=True)
        make_report_execution(schedule, report)
        delivery.deliver(report)
        assert smtp.received == []

    def test_no_recipients_is_skipped(self, smtp, owner):
        _schedule, report, execution = scheduled_report(
            owner, schedule_fields={"email_recipients": []}
        )
        delivery.deliver(report)
        assert smtp.received == []
        assert email_status(execution) == Delivery.SKIPPED

    def test_duplicate_recipients_get_one_copy(self, smtp, owner):
        _schedule, report, _execution = scheduled_report(
            owner,
            schedule_fields={"email_recipients": ["a@example.com", " A@example.com", "b@x.org"]},
        )
        delivery.deliver(report)
        [received] = smtp.received
        assert received.rcpt_tos == ["a@example.com", "b@x.org"]


class TestScheduledFailed:
    def test_owner_is_told_with_the_error(self, smtp, owner):
        schedule = make_email_schedule(
            owner,
            send_email=False,  # the owner hears about failures anyway
            next_run_at=datetime.datetime(2025, 3, 10, 7, 0, tzinfo=datetime.timezone.utc),
        )
        report = ReportFactory(
            user=owner,
            title=schedule.title,
            status="failed",
            error_message="ConnectionError: the warehouse is down",
        )
        execution = make_report_execution(schedule, report)

        delivery.deliver(report)

        [received] = smtp.received
        assert received.rcpt_tos == ["olivia@example.com"]
        message = received.message
        assert message["Subject"] == 'Scheduled report "Weekly numbers" failed'
        assert attachments(message) == []
        body = text_body(message)
        assert "Hello olivia," in body
        assert 'scheduled report "Weekly numbers" due 2025-03-03 08:00 CET failed' in body
        assert "Error: ConnectionError: the warehouse is down" in body
        assert "next run is due 2025-03-10 08:00 CET" in body
        assert email_status(execution) == Delivery.SENT

    def test_owner_without_address_is_skipped(self, smtp):
        owner = UserFactory(username="noaddress", email="")
        schedule = make_email_schedule(owner)
        report = ReportFactory(user=owner, status="failed", error_message="boom")
        execution = make_report_execution(schedule, report)
        delivery.deliver(report)
        assert smtp.received == []
        assert email_status(execution) == Delivery.SKIPPED


class TestAtMostOnce:
    def test_a_second_delivery_sends_nothing(self, smtp, owner):
        _schedule, report, execution = scheduled_report(owner)
        delivery.deliver(report)
        delivery.deliver(report)  # a redelivered or retried notification step
        assert len(smtp.received) == 1
        assert email_status(execution) == Delivery.SENT

    def test_an_email_being_sent_elsewhere_is_not_sent_again(self, smtp, owner):
        _schedule, report, execution = scheduled_report(
            owner, execution_fields={"email_status": Delivery.SENDING}
        )
        delivery.deliver(report)
        assert smtp.received == []
        assert email_status(execution) == Delivery.SENDING

    def test_pending_claim_set_by_the_scheduler_is_honoured(self, smtp, owner):
        _schedule, report, execution = scheduled_report(
            owner, execution_fields={"email_status": Delivery.PENDING}
        )
        delivery.deliver(report)
        assert len(smtp.received) == 1
        assert email_status(execution) == Delivery.SENT

    def test_temporary_smtp_error_gives_the_claim_back_and_raises(self, smtp, owner):
        _schedule, report, execution = scheduled_report(owner)
        smtp.fail_next(1)

        with pytest.raises(smtplib.SMTPDataError):
            delivery.deliver(report)
        assert smtp.received == []
        assert email_status(execution) == Delivery.PENDING

        delivery.deliver(report)  # the retry
        assert len(smtp.received) == 1
        assert email_status(execution) == Delivery.SENT

    def test_smtp_server_down_raises_for_a_retry(self, smtp, owner, settings):
        _schedule, report, execution = scheduled_report(owner)
        settings.EMAIL_PORT = free_port()  # nothing listens there
        with pytest.raises(OSError):
            delivery.deliver(report)
        assert email_status(execution) == Delivery.PENDING

    def test_refused_recipients_fail_for_good(self, smtp, owner):
        _schedule, report, execution = scheduled_report(owner)
        smtp.refuse(*RECIPIENTS)
        delivery.deliver(report)  # no exception: retrying would be refused again
        assert smtp.received == []
        assert email_status(execution) == Delivery.FAILED
        delivery.deliver(report)
        assert email_status(execution) == Delivery.FAILED

    def test_abandon_marks_a_pending_email_failed(self, smtp, owner):
        _schedule, report, execution = scheduled_report(owner)
        smtp.fail_next(1)
        with pytest.raises(smtplib.SMTPDataError):
            delivery.deliver(report)
        delivery.abandon(report)
        assert email_status(execution) == Delivery.FAILED
        delivery.deliver(report)
        assert smtp.received == []

    def test_retried_notification_task_mails_once(self, smtp, owner):
        """The real notification task, applied in-process: its retry sends the one e-mail."""
        _schedule, report, execution = scheduled_report(owner)
        smtp.fail_next(1)

        result = tasks.send_report_notification.apply(args=[str(report.pk)])

        assert result.successful(), result.traceback
        assert len(smtp.received) == 1
        assert email_status(execution) == Delivery.SENT
        # Redelivered once more: nothing new.
        tasks.send_report_notification.apply(args=[str(report.pk)])
        assert len(smtp.received) == 1

    def test_notification_task_out_of_retries_records_the_email_failed(self, smtp, owner):
        """Four temporary SMTP errors: the task gives up and abandon() settles the e-mail."""
        _schedule, report, execution = scheduled_report(owner)
        smtp.fail_next(10)

        result = tasks.send_report_notification.apply(args=[str(report.pk)])

        assert result.failed()
        assert isinstance(result.result, smtplib.SMTPDataError)
        assert smtp.received == []
        assert email_status(execution) == Delivery.FAILED
        report.refresh_from_db()
        assert report.notified_at is None


# -- scheduled runs that fail before their report exists ------------------------------
# 08:30 in Paris, on a Tuesday.
T_RUN = datetime.datetime(2025, 3, 4, 7, 30, tzinfo=datetime.timezone.utc)


@pytest.fixture
def queued_notices(monkeypatch):
    """send_schedule_failure_notification messages the scheduler queued, not sent."""
    sent = []

    def capture(args=None, kwargs=None, **options):
        sent.append((tuple(args), options))

    monkeypatch.setattr(tasks.send_schedule_failure_notification, "apply_async", capture)
    return sent


def due_schedule(owner, **fields) -> ReportSchedule:
    """A schedule created through the service, due before T_RUN (daily at 07:00 in Paris)."""
    values = {
        "report_type": "numbers",
        "title": "Daily numbers",
        "frequency": "daily",
        "time_of_day": datetime.time(7, 0),
        "timezone": "Europe/Paris",
        "parameters": {"count": 2, "text": "{{today}}"},
        **fields,
    }
    now = T_RUN - datetime.timedelta(days=1)
    return schedules.create_schedule(owner=owner, now=now, **values)


def break_parameters(schedule) -> None:
    ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "many"})


def notice_task(execution):
    """The real notification task, applied in-process (its retries run at once)."""
    return tasks.send_schedule_failure_notification.apply(args=[execution.pk])


class TestRunWithoutReport:
    """Parameters no longer valid, generator removed, report refused, timing invalid."""

    def test_tick_queues_the_notice_once_committed_and_the_task_mails_the_owner(
        self, smtp, owner, queued_notices, django_capture_on_commit_callbacks
    ):
        schedule = due_schedule(
            owner,
            send_email=True,
            email_recipients=RECIPIENTS,
            webhook_url="https://hooks.example.com/x",
            priority="urgent",
        )
        break_parameters(schedule)

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            [execution] = schedules.tick(now=T_RUN)
        assert execution.status == ScheduleExecution.Status.FAILED
        assert execution.report is None
        assert (execution.email_status, execution.webhook_status) == (
            Delivery.PENDING,
            Delivery.SKIPPED,  # webhooks go out per report: none for this run
        )
        assert queued_notices == [] and smtp.received == []  # nothing before the commit
        for callback in callbacks:
            callback()
        [(args, options)] = queued_notices
        assert args == (execution.pk,)
        assert options["queue"] == django_settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"]
        assert smtp.received == []  # the tick never talks to SMTP

        result = notice_task(execution)

        assert result.successful(), result.traceback
        assert result.result == {"execution_id": execution.pk, "email_status": "sent"}
        [received] = smtp.received
        assert received.rcpt_tos == ["olivia@example.com"]  # the owner, not the recipients
        message = received.message
        assert message["Subject"] == 'Scheduled report "Daily numbers" failed'
        assert attachments(message) == []
        body = text_body(message)
        assert "Hello olivia," in body
        assert (
            'scheduled report "Daily numbers" due 2025-03-04 07:00 CET failed '
            "before its report could be created." in body
        )
        assert 'Error: Invalid parameters: {"count": ["A valid integer is required."]}' in body
        assert "next run is due 2025-03-05 07:00 CET" in body
        assert email_status(execution) == Delivery.SENT
        # A redelivered or repeated task sends nothing more.
        assert notice_task(execution).result["email_status"] is None
        assert len(smtp.received) == 1

    def test_removed_generator_through_run_now(
        self, smtp, owner, queued_notices, django_capture_on_commit_callbacks
    ):
        schedule = due_schedule(owner)
        ReportSchedule.objects.filter(pk=schedule.pk).update(report_type="gone")
        schedule.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            execution = schedules.run_now(schedule, now=T_RUN)
        assert execution.status == ScheduleExecution.Status.FAILED
        assert [args for args, _options in queued_notices] == [(execution.pk,)]
        notice_task(execution)
        [received] = smtp.received
        assert "gone" in text_body(received.message)
        assert email_status(execution) == Delivery.SENT

    def test_invalid_stored_timing_says_the_schedule_stopped(
        self, smtp, owner, queued_notices, django_capture_on_commit_callbacks
    ):
        schedule = due_schedule(owner)
        ReportSchedule.objects.filter(pk=schedule.pk).update(
            frequency="custom", cron_expression="garbage"
        )
        with django_capture_on_commit_callbacks(execute=True):
            [execution] = schedules.tick(now=T_RUN)
        assert "Invalid schedule timing" in execution.error
        assert execution.email_status == Delivery.PENDING
        assert execution.webhook_status == Delivery.NOT_REQUESTED
        notice_task(execution)
        body = text_body(smtp.received[0].message)
        assert "Error: Invalid schedule timing" in body
        assert "will not run again until it is fixed" in body

    def test_report_request_that_raises(
        self, smtp, owner, queued_notices, monkeypatch, django_capture_on_commit_callbacks
    ):
        def refuse(**kwargs):
            raise ValueError("no more reports today")

        monkeypatch.setattr(services, "request_report", refuse)
        due_schedule(owner, webhook_url="https://hooks.example.com/x")
        with django_capture_on_commit_callbacks(execute=True):
            [execution] = schedules.tick(now=T_RUN)
        execution.refresh_from_db()
        assert execution.status == ScheduleExecution.Status.FAILED
        # The owner reads words and a reference; the admin-only detail has the exception.
        assert execution.error.startswith("The report could not be generated because of an")
        assert "ValueError: no more reports today" in execution.error_detail
        assert (execution.email_status, execution.webhook_status) == (
            Delivery.PENDING,
            Delivery.SKIPPED,
        )
        assert [args for args, _options in queued_notices] == [(execution.pk,)]
        notice_task(execution)
        body = text_body(smtp.received[0].message)
        assert f"Error: {execution.error}" in body
        assert "no more reports today" not in body

    def test_report_refused_by_the_broker_waits_for_the_sweeper(
        self, smtp, owner, monkeypatch, queued_notices, django_capture_on_commit_callbacks
    ):
        """The run is not failed for an outage: its report waits, pending, and nobody is mailed."""
        from kombu.exceptions import OperationalError

        def refuse(report, step, **kwargs):
            raise OperationalError("Connection refused")

        monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)
        due_schedule(owner)
        with django_capture_on_commit_callbacks(execute=True):
            [execution] = schedules.tick(now=T_RUN)
        execution.refresh_from_db()
        assert execution.status == ScheduleExecution.Status.RUNNING
        assert (execution.report.status, execution.report.next_step) == ("pending", "generate")
        assert queued_notices == []
        assert smtp.received == []

    def test_broker_down_sends_the_notice_at_once(
        self, smtp, owner, monkeypatch, django_capture_on_commit_callbacks
    ):
        def refuse(*args, **kwargs):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr(tasks.send_schedule_failure_notification, "apply_async", refuse)
        schedule = due_schedule(owner)
        break_parameters(schedule)
        with django_capture_on_commit_callbacks(execute=True):
            [execution] = schedules.tick(now=T_RUN)
        assert len(smtp.received) == 1
        assert email_status(execution) == Delivery.SENT

    def test_broker_and_smtp_down_never_break_the_tick(
        self, smtp, owner, monkeypatch, settings, caplog, django_capture_on_commit_callbacks
    ):
        def refuse(*args, **kwargs):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr(tasks.send_schedule_failure_notification, "apply_async", refuse)
        settings.EMAIL_PORT = free_port()  # nothing listens there
        broken = due_schedule(owner)
        break_parameters(broken)
        fine = due_schedule(owner, time_of_day=datetime.time(6, 0))
        with django_capture_on_commit_callbacks(execute=True):
            started = schedules.tick(now=T_RUN)
        by_schedule = {e.schedule_id: e for e in started}
        assert by_schedule[fine.pk].status == ScheduleExecution.Status.RUNNING
        assert email_status(by_schedule[broken.pk]) == Delivery.FAILED  # not left pending
        assert "Could not e-mail the owner" in caplog.text

    def test_temporary_smtp_error_is_retried_by_the_task(self, smtp, owner, queued_notices):
        schedule = due_schedule(owner)
        break_parameters(schedule)
        [execution] = schedules.tick(now=T_RUN)
        smtp.fail_next(1)
        result = notice_task(execution)
        assert result.successful(), result.traceback
        assert len(smtp.received) == 1
        assert email_status(execution) == Delivery.SENT

    def test_spent_retries_record_the_email_failed(self, smtp, owner, queued_notices):
        schedule = due_schedule(owner)
        break_parameters(schedule)
        [execution] = schedules.tick(now=T_RUN)
        smtp.fail_next(10)
        result = notice_task(execution)
        assert result.failed()
        assert isinstance(result.result, smtplib.SMTPDataError)
        assert smtp.received == []
        assert email_status(execution) == Delivery.FAILED

    def test_owner_without_address_is_skipped(self, smtp, queued_notices):
        owner = UserFactory(username="noaddress", email="")
        schedule = due_schedule(owner)
        break_parameters(schedule)
        [execution] = schedules.tick(now=T_RUN)
        assert notice_task(execution).result["email_status"] == Delivery.SKIPPED
        assert smtp.received == []
        assert email_status(execution) == Delivery.SKIPPED

    def test_only_for_failed_runs_without_a_report(self, smtp, owner):
        _schedule, _report, execution = scheduled_report(owner)
        assert delivery.deliver_execution_failure(execution) is None  # it has a report
        ScheduleExecution.objects.filter(pk=execution.pk).update(report=None)
        execution.refresh_from_db()
        assert delivery.deliver_execution_failure(execution) is None  # still running
        assert smtp.received == []
        assert notice_task(ScheduleExecution(pk=10**9)).result["email_status"] is None


# -- ad-hoc reports ----------------------------------------------------------------
class TestRequester:
    def test_completed_report_is_attached_for_the_requester(self, smtp, user):
        report = numbers_report(user, send_email=True, title='Q1 "sales" & more')

        delivery.deliver(report)

        [received] = smtp.received
        assert received.rcpt_tos == [user.email]
        message = received.message
        # Text templates are not HTML-escaped.
        assert message["Subject"] == 'Your report "Q1 "sales" & more" is ready'
        [(_name, content_type, content)] = attachments(message)
        assert content_type == "text/csv"
        assert csv_rows(content) == expected_rows(3)
        body = text_body(message)
        assert "Rows: 3" in body
        assert f"Also available (sign-in required): /api/v1/reports/{report.pk}/download/" in body

    def test_failed_report_tells_the_error(self, smtp, user):
        report = ReportFactory(user=user, send_email=True, status="failed", error_message="boom")
        delivery.deliver(report)
        [received] = smtp.received
        assert received.message["Subject"] == f'Your report "{report.title}" failed'
        assert "Error: boom" in text_body(received.message)

    def test_nothing_unless_asked(self, smtp, user):
        delivery.deliver(numbers_report(user))
        assert smtp.received == []

    def test_cancelled_report_sends_no_email(self, smtp, user):
        report = ReportFactory(user=user, send_email=True)
        services.cancel_report(report)
        delivery.deliver(report)
        assert smtp.received == []

    def test_temporary_error_raises_for_the_notification_retry(self, smtp, user):
        report = numbers_report(user, send_email=True)
        smtp.fail_next(1)
        with pytest.raises(smtplib.SMTPDataError):
            delivery.deliver(report)

    def test_refused_requester_is_logged_not_raised(self, smtp, user, caplog):
        report = numbers_report(user, send_email=True)
        smtp.refuse(user.email)
        delivery.deliver(report)
        assert smtp.received == []
        assert "not retrying" in caplog.text

    def test_notification_step_sends_once(self, smtp, user):
        report = numbers_report(user, send_email=True)
        assert services.notify_report(report.pk) is True
        assert services.notify_report(report.pk) is False
        assert len(smtp.received) == 1
        assert attachments(smtp.received[0].message)


# -- templates ---------------------------------------------------------------------------
def test_templates_can_be_overridden_with_an_html_alternative(smtp, owner, settings, tmp_path):
    folder = tmp_path / "django_async_reports" / "email"
    folder.mkdir(parents=True)
    (folder / "schedule_completed_subject.txt").write_text("[Reports] {{ schedule.title }}\n")
    (folder / "schedule_completed_body.html").write_text(
        "<p>{{ report.title }}: {{ row_count }} rows</p>"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    _schedule, report, _execution = scheduled_report(owner, schedule_fields={"title": "A<b>"})

    with override_settings(TEMPLATES=templates):
        delivery.deliver(report)

    [received] = smtp.received
    message = received.message
    assert message["Subject"] == "[Reports] A<b>"
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert html.get_content().strip() == "<p>A&lt;b&gt;: 3 rows</p>"  # HTML is escaped
    assert "Rows: 3" in text_body(message)  # the packaged text body still applies
    assert len(attachments(message)) == 1
