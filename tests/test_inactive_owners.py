"""Schedules (and reports) of inactive owners: not run, not delivered."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail

from django_async_reports import delivery, schedules, services
from django_async_reports.delivery import policy, webhooks
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.factories import ReportFactory, UserFactory
from tests.helpers import make_schedule, scheduled_report, set_reports

pytestmark = pytest.mark.django_db

Delivery = ScheduleExecution.Delivery
T_RUN = datetime.datetime(2025, 3, 4, 9, 0, tzinfo=datetime.timezone.utc)
INACTIVE = "The owner's account is inactive: the schedule was disabled."


def due(schedule) -> ReportSchedule:
    ReportSchedule.objects.filter(pk=schedule.pk).update(
        next_run_at=T_RUN - datetime.timedelta(minutes=5)
    )
    schedule.refresh_from_db()
    return schedule


def deactivate(user) -> None:
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False


class TestTick:
    def test_a_due_schedule_of_an_inactive_owner_is_skipped_and_disabled(
        self, owner, captured_dispatches
    ):
        schedule = due(
            make_schedule(
                owner,
                send_email=True,
                email_recipients=["boss@example.com"],
                webhook_url="https://93.184.215.14/hook",
            )
        )
        due_at = schedule.next_run_at
        deactivate(owner)

        [execution] = schedules.tick(now=T_RUN)

        assert execution.status == ScheduleExecution.Status.SKIPPED
        assert execution.note == INACTIVE
        assert execution.due_at == due_at
        assert execution.report is None
        assert (execution.email_status, execution.webhook_status) == (
            Delivery.SKIPPED,
            Delivery.SKIPPED,
        )
        schedule.refresh_from_db()
        assert (schedule.enabled, schedule.next_run_at) == (False, None)
        assert not Report.objects.exists()
        assert captured_dispatches == []
        # Disabled: the next tick finds nothing.
        assert schedules.tick(now=T_RUN + datetime.timedelta(days=2)) == []

    def test_active_owners_are_run_as_before(self, owner, captured_dispatches):
        due(make_schedule(owner))
        [execution] = schedules.tick(now=T_RUN)
        assert execution.status == ScheduleExecution.Status.RUNNING
        assert execution.note == ""

    def test_the_skip_is_in_the_execution_history_api(self, user, auth_client):
        schedule = due(make_schedule(user))
        deactivate(user)
        schedules.tick(now=T_RUN)
        # The owner cannot sign in any more; an admin re-activating them sees why.
        type(user).objects.filter(pk=user.pk).update(is_active=True)

        response = auth_client.get(f"/api/v1/reports/schedules/{schedule.pk}/executions/")

        assert response.status_code == 200
        [item] = response.json()["results"]
        assert (item["status"], item["note"], item["report_id"]) == ("skipped", INACTIVE, None)
        detail = auth_client.get(f"/api/v1/reports/schedules/{schedule.pk}/").json()
        assert detail["enabled"] is False
        assert detail["last_execution"]["note"] == INACTIVE

    def test_the_task_counts_skipped_runs(self, owner):
        from django_async_reports.tasks import tick_schedules

        due(make_schedule(owner))
        long_ago = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        ReportSchedule.objects.update(next_run_at=long_ago)
        deactivate(owner)
        assert tick_schedules.apply().result == {"started": 0, "failed": 0, "skipped": 1}


class TestDelivery:
    def test_a_run_queued_before_the_deactivation_delivers_nothing(self, owner):
        _schedule, report, execution = scheduled_report(
            owner,
            schedule_fields={"webhook_url": "https://93.184.215.14/hook"},
            execution_fields={"email_status": Delivery.PENDING, "webhook_status": Delivery.PENDING},
        )
        deactivate(owner)

        delivery.deliver(Report.objects.select_related("user").get(pk=report.pk))

        assert mail.outbox == []
        execution.refresh_from_db()
        assert (execution.email_status, execution.webhook_status) == (
            Delivery.SKIPPED,
            Delivery.SKIPPED,
        )
        assert execution.note == policy.INACTIVE_OWNER_DELIVERY

    def test_the_skipped_channels_and_their_reason_are_written_together(self, owner, monkeypatch):
        # A reader (the API, a test waiting on the statuses) never sees the
        # channels skipped without the note saying why: one transaction.
        _schedule, report, execution = scheduled_report(
            owner,
            schedule_fields={"webhook_url": "https://93.184.215.14/hook"},
            execution_fields={"email_status": Delivery.PENDING, "webhook_status": Delivery.PENDING},
        )
        deactivate(owner)

        def note_fails(*args, **kwargs):
            raise RuntimeError("note not written")

        monkeypatch.setattr(policy, "add_note", note_fails)
        with pytest.raises(RuntimeError):
            delivery.deliver(Report.objects.select_related("user").get(pk=report.pk))

        execution.refresh_from_db()
        assert (execution.email_status, execution.webhook_status, execution.note) == (
            Delivery.PENDING,
            Delivery.PENDING,
            "",
        )

    def test_ad_hoc_reports_of_an_inactive_user_are_not_delivered(
        self, user, django_capture_on_commit_callbacks
    ):
        report = ReportFactory(
            user=user,
            status="completed",
            send_email=True,
            webhook_url="https://93.184.215.14/hook",
        )
        deactivate(user)
        with django_capture_on_commit_callbacks() as callbacks:
            delivery.deliver(Report.objects.select_related("user").get(pk=report.pk))
        assert mail.outbox == []
        assert callbacks == []  # no webhook queued

    def test_a_queued_webhook_attempt_is_skipped_once_the_owner_is_inactive(self, user):
        report = ReportFactory(user=user, status="completed", webhook_url="https://x.example/h")
        deactivate(user)

        outcome = webhooks.attempt_delivery(report.pk, "report.completed", "msg_1", 1)

        assert (outcome.outcome, outcome.error) == ("skipped", "the owner's account is inactive")
        assert not report.webhook_deliveries.exists()

    def test_user_models_without_the_flag_count_as_active(self):
        class Plain:
            pass

        assert policy.is_active_account(Plain())
        assert not policy.is_active_account(None)
        assert not policy.is_active_account(UserFactory.build(is_active=False))


def test_notify_step_skips_for_an_inactive_owner(owner, settings):
    """Through the notification step itself, as the worker runs it."""
    set_reports(settings)
    _schedule, report, execution = scheduled_report(
        owner, execution_fields={"email_status": Delivery.PENDING}
    )
    Report.objects.filter(pk=report.pk).update(next_step=Report.Step.NOTIFY)
    deactivate(owner)

    assert services.notify_report(report.pk) is True

    assert mail.outbox == []
    execution.refresh_from_db()
    assert execution.status == ScheduleExecution.Status.COMPLETED
    assert execution.email_status == Delivery.SKIPPED
