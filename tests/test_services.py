"""Unit tests of the service layer, called directly (no broker)."""

import hashlib
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from django_async_reports import progress, services, signals
from django_async_reports.exceptions import InvalidReportState, NotRegistered, ReportCancelled
from django_async_reports.models import Report
from django_async_reports.storage import report_storage
from tests.factories import ReportFactory, SaleFactory
from tests.helpers import run_report

pytestmark = pytest.mark.django_db


class TestRequest:
    def test_creates_pending_row_with_task_id_and_normalised_parameters(
        self, user, captured_dispatches
    ):
        report = services.request_report(
            user=user,
            report_type="sales",
            parameters={"start_date": "2024-12-01", "end_date": "2024-12-31"},
            title="December",
            priority="high",
        )
        assert report.status == Report.Status.PENDING
        assert report.priority == "high"
        assert report.celery_task_id
        assert report.parameters == {"start_date": "2024-12-01", "end_date": "2024-12-31"}
        # Inside the test transaction nothing was committed, so nothing was sent.
        assert captured_dispatches == []

    def test_default_title_is_the_label(self, user, captured_dispatches):
        report = services.request_report(user=user, report_type="numbers")
        assert report.title == "Numbers"
        assert report.parameters == {"count": 10, "delay": 0.0, "text": ""}

    def test_invalid_parameters_create_nothing(self, user, captured_dispatches):
        with pytest.raises(ValidationError) as info:
            services.request_report(user=user, report_type="sales", parameters={"start_date": "x"})
        assert set(info.value.detail) == {"start_date", "end_date"}
        assert not Report.objects.exists()

    def test_unknown_type_and_priority(self, user, captured_dispatches):
        with pytest.raises(NotRegistered):
            services.request_report(user=user, report_type="nope")
        with pytest.raises(ValueError):
            services.request_report(user=user, report_type="numbers", priority="asap")
        assert not Report.objects.exists()

    def test_signal_sent(self, user, captured_dispatches):
        received = []
        signals.report_requested.connect(
            lambda **kw: received.append(kw["report"]), weak=False, dispatch_uid="t"
        )
        try:
            report = services.request_report(user=user, report_type="numbers")
        finally:
            signals.report_requested.disconnect(dispatch_uid="t")
        assert received == [report]


@pytest.mark.django_db(transaction=True)
def test_dispatch_happens_after_commit_with_the_stored_task_id(user, monkeypatch):
    sent = []

    def fake_apply_async(self, args=None, kwargs=None, **options):
        sent.append((self.name, args, options))

    monkeypatch.setattr("celery.app.task.Task.apply_async", fake_apply_async)
    report = services.request_report(user=user, report_type="numbers", priority="urgent")
    # One message, the generation: each step sends the next one when it is done.
    [(name, args, options)] = sent
    assert name == "django_async_reports.generate_report"
    assert args == (str(report.pk),)
    assert options["task_id"] == report.celery_task_id
    assert options["queue"] == settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"]
    # Bounded: a broker that does not confirm within PUBLISH_TIMEOUT is an error.
    assert options["confirm_timeout"] == options["timeout"] == 2.5  # twice: PUBLISH_TIMEOUT
    assert options["retry"] is False  # send_task tries twice itself, on a fresh connection
    assert options["connection"] is not None
    report.refresh_from_db()
    assert (report.next_step, report.next_step_at) == ("", None)  # confirmed: cleared


class TestRun:
    def test_full_run_writes_file_and_result_data(self, user):
        report = ReportFactory(user=user, parameters={"count": 3, "delay": 0, "text": "=cmd"})
        run_report(report)
        assert report.status == Report.Status.COMPLETED
        assert report.progress == 100
        with report_storage.open(report.result_file.name, "rb") as fh:
            content = fh.read()
        assert content.decode().splitlines() == [
            "n,square,text",
            "1,1,'=cmd",
            "2,4,'=cmd",
            "3,9,'=cmd",
        ]
        assert report.result_data["row_count"] == 3
        assert report.result_data["file_size"] == len(content)
        assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(content).hexdigest()
        assert report.result_file.name.startswith(f"reports/{user.pk}/{report.pk}/")
        assert report.completed_at and report.expires_at > report.completed_at
        assert report.started_at is not None

    def test_generator_opt_out_of_neutralisation(self, user):
        report = ReportFactory(
            user=user, report_type="raw_text", parameters={"count": 1, "delay": 0, "text": "=cmd"}
        )
        run_report(report)
        with report_storage.open(report.result_file.name, "rb") as fh:
            assert fh.read().decode().splitlines()[1] == "1,1,=cmd"

    def test_sales_rows_are_scoped_to_the_requester(self, user, other_user):
        mine = SaleFactory(owner=user)
        SaleFactory(owner=other_user)
        report = ReportFactory(
            user=user,
            report_type="sales",
            parameters={"start_date": "2024-01-01", "end_date": "2024-12-31"},
        )
        run_report(report)
        with report_storage.open(report.result_file.name, "rb") as fh:
            lines = fh.read().decode().splitlines()
        assert lines == [
            "sale_id,date,customer,amount",
            f"{mine.pk},2024-12-01,{mine.customer},10.50",
        ]
        assert report.result_data["summary"] == {"sales": 1}

    def test_file_name_never_uses_user_input_as_a_path(self, user):
        report = ReportFactory(user=user, title="../../etc/passwd; rm -rf /")
        run_report(report)
        name = report.result_file.name
        assert ".." not in name and ";" not in name and " " not in name
        assert name.endswith("/etcpasswd-rm-rf.csv")

    def test_claim_is_conditional(self, user):
        report = ReportFactory(user=user)
        assert services.claim_report(report.pk) is not None
        # A duplicate delivery of the same message does not run it twice...
        assert services.claim_report(report.pk) is None
        # ...but a redelivery after a lost worker may take it over.
        assert services.claim_report(report.pk, redelivered=True) is not None

    @pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
    def test_finished_reports_never_run_again(self, user, status):
        report = ReportFactory(user=user, status=status)
        assert services.claim_report(report.pk) is None
        assert services.claim_report(report.pk, redelivered=True) is None

    def test_cancel_during_generation_stops_and_leaves_no_file(self, user):
        report = ReportFactory(user=user, parameters={"count": 50, "delay": 0, "text": ""})
        claimed = services.claim_report(report.pk)

        calls = {"n": 0}
        real_advance = progress.ProgressTracker.advance

        def advance(self, rows):
            calls["n"] += 1
            if calls["n"] == 5:
                Report.objects.filter(pk=report.pk).update(status=Report.Status.CANCELLED)
                return self.still_processing()
            return real_advance(self, rows)

        with (
            mock.patch.object(progress.ProgressTracker, "advance", advance),
            pytest.raises(ReportCancelled),
        ):
            services.generate(claimed)
        report.refresh_from_db()
        assert report.status == Report.Status.CANCELLED
        assert not report.result_file
        assert calls["n"] == 5

    def test_cancel_between_generate_and_post_process_removes_file(self, user):
        report = ReportFactory(user=user)
        report = services.generate(services.claim_report(report.pk))
        name = report.result_file.name
        assert report_storage.exists(name)
        services.cancel_report(report)
        assert not report_storage.exists(name)
        assert services.post_process(report.pk) is None
        report.refresh_from_db()
        assert report.status == Report.Status.CANCELLED

    def test_row_width_mismatch_is_a_clear_error(self, user, monkeypatch):
        monkeypatch.setattr(
            "tests.testapp.reports.NumbersReport.rows", lambda self, p: iter([(1,)])
        )
        report = ReportFactory(user=user)
        with pytest.raises(ValueError, match="1 values for 3 columns"):
            services.generate(services.claim_report(report.pk))


class TestCancel:
    def test_pending_is_cancelled_at_once(self, user):
        report = ReportFactory(user=user)
        services.cancel_report(report)
        assert report.status == Report.Status.CANCELLED
        assert progress.read_cache(report.pk)["status"] == "cancelled"

    @pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
    def test_finished_cannot_be_cancelled(self, user, status):
        report = ReportFactory(user=user, status=status)
        with pytest.raises(InvalidReportState, match=status):
            services.cancel_report(report)


class TestRetryAndRegenerate:
    def test_retry_failed_report_reuses_row_with_new_task_id(self, user, captured_dispatches):
        report = ReportFactory(user=user, status="failed", error_message="boom", retry_count=3)
        old_task = report.celery_task_id
        services.retry_report(report)
        assert report.status == Report.Status.PENDING
        assert report.error_message == "" and report.retry_count == 0
        assert report.celery_task_id != old_task

    def test_retry_refuses_active_or_completed(self, user, captured_dispatches):
        for status in ("pending", "processing", "completed"):
            with pytest.raises(InvalidReportState):
                services.retry_report(ReportFactory(user=user, status=status))

    def test_regenerate_copies_the_request(self, user, captured_dispatches):
        report = ReportFactory(user=user, status="completed", priority="low", send_email=True)
        new = services.regenerate_report(report)
        assert new.pk != report.pk
        assert (new.report_type, new.title, new.parameters, new.priority, new.send_email) == (
            report.report_type,
            report.title,
            report.parameters,
            report.priority,
            True,
        )
        assert new.status == Report.Status.PENDING


class TestFailureAndNotification:
    def test_fail_report_is_terminal_and_notifies_once(
        self, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        report = ReportFactory(user=user, send_email=True, status="processing")
        failed = []
        signals.report_failed.connect(
            lambda **kw: failed.append(kw["error"]), weak=False, dispatch_uid="f"
        )
        try:
            with django_capture_on_commit_callbacks(execute=True):
                assert services.fail_report(report.pk, "Timeout") is not None
                assert services.fail_report(report.pk, "again") is None
            # No SMTP inside fail_report: the notification is a step of its own.
            assert mail.outbox == []
            assert [step for _r, step, _c in captured_dispatches.steps] == ["notify"]
            assert services.notify_report(report.pk) is True
            assert services.notify_report(report.pk) is False  # a redelivered step
        finally:
            signals.report_failed.disconnect(dispatch_uid="f")
        report.refresh_from_db()
        assert report.status == "failed" and report.error_message == "Timeout"
        assert failed == ["Timeout"]
        assert len(mail.outbox) == 1
        assert "failed" in mail.outbox[0].subject and mail.outbox[0].to == [user.email]

    def test_completed_email_is_sent_once(self, user):
        report = ReportFactory(user=user, send_email=True)
        run_report(report)
        assert services.notify_report(report.pk) is False  # a redelivered step
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert report.title in message.subject
        assert f"/api/v1/reports/{report.pk}/download/" in message.body

    @override_settings(ASYNC_REPORTS={"BASE_URL": "https://reports.example.com/"})
    def test_email_link_is_absolute_with_base_url(self, user):
        report = run_report(ReportFactory(user=user, send_email=True))
        assert (
            f"https://reports.example.com/api/v1/reports/{report.pk}/download/"
            in mail.outbox[0].body
        )

    def test_no_email_unless_asked(self, user):
        run_report(ReportFactory(user=user))
        assert mail.outbox == []

    def test_schedule_retry_counts(self, user, captured_dispatches, settings):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "RETRY_COUNTDOWN": 60}
        report = ReportFactory(user=user, status="processing")
        assert services.schedule_retry(report, "ConnectionError: down")
        report.refresh_from_db()
        assert (report.status, report.retry_count) == ("pending", 1)
        # The retry is sent with the countdown, and cleared from the row once sent.
        assert [(s, c) for _r, s, c in captured_dispatches.steps] == [("generate", 60)]
        assert report.next_step == ""
        assert not services.schedule_retry(report, "again")  # no longer processing

    def test_schedule_retry_stops_after_max_retries(self, user, captured_dispatches):
        report = ReportFactory(user=user, status="processing", retry_count=3)
        assert not services.schedule_retry(report, "ConnectionError: down")
        report.refresh_from_db()
        assert (report.status, report.retry_count) == ("processing", 3)

    def test_a_refused_retry_is_left_to_the_sweeper(self, user, monkeypatch, settings):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "RETRY_COUNTDOWN": 60}

        def refuse(report, step, **kw):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)
        report = ReportFactory(user=user, status="processing")
        assert services.schedule_retry(report, "ConnectionError: down")
        report.refresh_from_db()
        assert (report.status, report.next_step) == ("pending", "generate")
        # Due once the countdown has passed, like the message would have been.
        assert report.next_step_at > timezone.now() + timedelta(seconds=50)


@pytest.mark.django_db(transaction=True)
class TestDelete:
    def test_delete_removes_row_and_file_after_commit(self, user):
        report = run_report(ReportFactory(user=user))
        name = report.result_file.name
        assert report_storage.exists(name)
        services.delete_report(report)
        assert not Report.objects.filter(pk=report.pk).exists()
        assert not report_storage.exists(name)

    def test_delete_active_report_cancels_it_first(self, user):
        report = ReportFactory(user=user, status="processing")
        cancelled = []
        signals.report_cancelled.connect(
            lambda **kw: cancelled.append(kw["report"].pk), weak=False, dispatch_uid="d"
        )
        try:
            services.delete_report(report)
        finally:
            signals.report_cancelled.disconnect(dispatch_uid="d")
        assert cancelled == [report.pk]
        assert not Report.objects.filter(pk=report.pk).exists()


@pytest.mark.django_db(transaction=True)
class TestBrokerDownAtRequest:
    """The broker refuses the message: the report is accepted and waits for the sweeper."""

    @pytest.fixture
    def broker_down(self, monkeypatch):
        from kombu.exceptions import OperationalError

        def refuse(*args, **kwargs):
            raise OperationalError("[Errno 111] Connection refused")

        monkeypatch.setattr("celery.app.task.Task.apply_async", refuse)

    def test_the_report_waits_pending_with_its_step_recorded(self, user, broker_down):
        report = services.request_report(user=user, report_type="numbers")
        report.refresh_from_db()
        assert (report.status, report.next_step) == ("pending", "generate")
        assert report.progress_message == services.WAITING_FOR_QUEUE
        assert report.error_message == ""

    def test_api_answers_201_pending(self, user, auth_client, broker_down):
        response = auth_client.post("/api/v1/reports/", {"report_type": "numbers"}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["status"], body["progress_message"]) == (
            "pending",
            services.WAITING_FOR_QUEUE,
        )
        assert Report.objects.get().status == Report.Status.PENDING

    def test_no_smtp_is_touched_on_the_request(self, user, broker_down, monkeypatch):
        def smtp_down(report):
            raise AssertionError("no e-mail is sent while requesting a report")

        monkeypatch.setattr("django_async_reports.delivery.email.send_report_email", smtp_down)
        report = services.request_report(user=user, report_type="numbers", send_email=True)
        assert Report.objects.get(pk=report.pk).status == Report.Status.PENDING


def test_a_raising_signal_receiver_does_not_block_the_email(user, db):
    def broken_receiver(**kwargs):
        raise RuntimeError("receiver bug")

    signals.report_completed.connect(broken_receiver, weak=False, dispatch_uid="broken")
    try:
        report = run_report(ReportFactory(user=user, send_email=True))
    finally:
        signals.report_completed.disconnect(dispatch_uid="broken")
    assert report.notified_at is not None
    assert len(mail.outbox) == 1


def test_failed_email_is_retried_without_hiding_the_failure(
    user, db, monkeypatch, captured_dispatches, django_capture_on_commit_callbacks
):
    def smtp_down(report):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django_async_reports.delivery.email.send_report_email", smtp_down)
    report = ReportFactory(user=user, status="processing", send_email=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.fail_report(report.pk, "boom")
    with pytest.raises(ConnectionRefusedError):
        services.notify_report(report.pk)  # the task retries it
    report.refresh_from_db()
    assert (report.status, report.error_message) == ("failed", "boom")
    # The lease is given back and the step stays due: a retry (or the sweeper) sends it.
    assert (report.notified_at, report.next_step) == (None, "notify")


def test_cancelled_reports_expire(user, db):
    report = ReportFactory(user=user)
    services.cancel_report(report)
    assert report.expires_at is not None
