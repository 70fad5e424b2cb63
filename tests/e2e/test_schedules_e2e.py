"""The schedules' tick run by a real worker: due schedules become executions and reports."""

from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from django_async_reports import schedules
from django_async_reports.exceptions import SERVICE_UNREACHABLE
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from django_async_reports.routing import ensure_declared, route_for_priority
from django_async_reports.tasks import tick_schedules
from tests.e2e.conftest import wait_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FINISHED = (ScheduleExecution.Status.COMPLETED, ScheduleExecution.Status.FAILED)


def send_tick(priority: str = "normal"):
    """Send the tick as beat does: to the reports queue of the test settings."""
    ensure_declared(tick_schedules.app)
    return tick_schedules.apply_async(**route_for_priority(priority))


def tick_result(result) -> dict[str, int]:
    """The counts the worker returned.

    Another suite sharing the broker may also get a tick into our queue (the
    exchange and routing keys are shared): whichever tick comes first claims
    the schedule on our database, so ours may find nothing left to start.
    """
    counts = result.get(timeout=30)
    assert set(counts) == {"started", "failed", "skipped"}
    return counts


def due_schedule(owner, **fields) -> ReportSchedule:
    schedule = schedules.create_schedule(owner=owner, frequency="daily", **fields)
    # Due five minutes ago, as if beat had just reached it.
    ReportSchedule.objects.filter(pk=schedule.pk).update(
        next_run_at=timezone.now() - timedelta(minutes=5)
    )
    schedule.refresh_from_db()
    return schedule


def finished_execution(schedule, timeout=60.0) -> ScheduleExecution:
    return wait_for(
        lambda: (
            ScheduleExecution.objects.filter(schedule=schedule, status__in=FINISHED)
            .select_related("report")
            .first()
        ),
        timeout=timeout,
        message=f"an execution of schedule {schedule.pk} to finish",
    )


def test_tick_on_the_worker_runs_a_due_schedule_to_a_completed_report(worker):
    owner = UserFactory(username="scheduler")
    schedule = due_schedule(
        owner,
        report_type="numbers",
        title="Daily numbers",
        parameters={"count": 5, "text": "{{today}}"},
        timezone="Pacific/Auckland",
    )
    due_at = schedule.next_run_at
    assert tick_result(send_tick())["failed"] == 0

    execution = finished_execution(schedule)

    assert execution.status == "completed", execution.error
    assert execution.due_at == due_at
    assert execution.trigger == "schedule"
    assert execution.row_count == 5
    report = execution.report
    assert report.status == Report.Status.COMPLETED
    assert report.user == owner
    assert report.title == "Daily numbers"
    assert execution.file_size == report.result_data["file_size"] > 0
    assert execution.finished_at == report.completed_at
    schedule.refresh_from_db()
    # Rendered in the schedule's zone at the tick's instant.
    tick_date = schedule.last_run_at.astimezone(ZoneInfo("Pacific/Auckland")).date()
    assert report.parameters["text"] == tick_date.isoformat()
    assert schedule.next_run_at > timezone.now()
    # Another tick finds nothing due: still one execution.
    assert tick_result(send_tick()) == {"started": 0, "failed": 0, "skipped": 0}
    assert ScheduleExecution.objects.filter(schedule=schedule).count() == 1


def test_a_failing_report_fails_its_execution(worker):
    owner = UserFactory(username="scheduler-broken")
    schedule = due_schedule(owner, report_type="broken", title="Never works")
    assert tick_result(send_tick("urgent"))["failed"] == 0

    execution = finished_execution(schedule)

    assert execution.status == "failed"
    assert execution.error.startswith(SERVICE_UNREACHABLE + " Reference: ")
    assert "ConnectionError: the data source is down" in execution.error_detail
    assert execution.report.status == Report.Status.FAILED
    assert execution.row_count is None


def test_run_now_on_the_worker(worker):
    owner = UserFactory(username="scheduler-manual")
    schedule = schedules.create_schedule(
        owner=owner,
        report_type="numbers",
        frequency="weekly",
        enabled=False,
        parameters={"count": 3, "text": "since {{last_success_at}}"},
    )

    execution = schedules.run_now(schedule)
    assert execution.status == "running"
    done = finished_execution(schedule)

    assert done.pk == execution.pk
    assert done.status == "completed", done.error
    assert done.trigger == "manual"
    assert done.row_count == 3
    # Never succeeded before: the schedule's creation.
    assert done.report.parameters["text"] == f"since {schedule.created_at.isoformat()}"


def test_a_run_that_cannot_start_mails_the_owner(worker, mailbox):
    """Parameters no longer valid at run time: a failed execution, and the owner is told."""
    owner = UserFactory(username="scheduler-invalid", email="owner@example.com")
    schedule = due_schedule(
        owner,
        report_type="numbers",
        title="Stale parameters",
        parameters={"count": 2},
        send_email=True,
        email_recipients=["team@example.com"],
    )
    ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "many"})

    counts = tick_result(send_tick())
    assert counts["started"] == 0

    execution = finished_execution(schedule)
    assert execution.status == "failed"
    assert execution.report is None
    assert "Invalid parameters" in execution.error
    wait_for(
        lambda: ScheduleExecution.objects.filter(pk=execution.pk, email_status="sent").exists(),
        timeout=20,
        message="the owner's e-mail to be sent",
    )
    [message] = mailbox.messages()
    assert message["To"] == "owner@example.com"  # the owner, not the recipients
    assert message["Subject"] == 'Scheduled report "Stale parameters" failed'
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "failed before its report could be created" in body
    assert "Invalid parameters" in body
    # A later tick finds nothing due, and nobody is mailed twice.
    assert tick_result(send_tick()) == {"started": 0, "failed": 0, "skipped": 0}
    time.sleep(1.0)
    assert len(mailbox.messages()) == 1


def test_run_now_over_http_of_a_removed_generator_mails_the_owner(worker, mailbox, alice):
    schedule = schedules.create_schedule(
        owner=alice.user, report_type="numbers", title="Orphan", frequency="daily"
    )
    ReportSchedule.objects.filter(pk=schedule.pk).update(report_type="retired")

    response = alice.post(f"schedules/{schedule.pk}/run-now/")

    assert response.status_code == 201, response.text
    data = response.json()
    assert data["status"] == "failed"
    assert "retired" in data["error"]
    wait_for(mailbox.messages, timeout=20, message="the owner's e-mail")
    [message] = mailbox.messages()
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == 'Scheduled report "Orphan" failed'
    assert ScheduleExecution.objects.get(schedule=schedule).email_status == "sent"
