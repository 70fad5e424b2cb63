"""The schedules service layer, called directly with a controlled clock (no broker)."""

from __future__ import annotations

import threading
import time as clock
from datetime import datetime, time, timedelta, timezone

import pytest
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.exceptions import ValidationError

from django_async_reports import schedules, services
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from django_async_reports.schedules import running
from tests.factories import UserFactory
from tests.helpers import run_report

pytestmark = pytest.mark.django_db

UTC = timezone.utc
Status = ScheduleExecution.Status
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)  # a Monday


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def make(user, *, now=T0, **fields):
    values = {
        "report_type": "numbers",
        "title": "Numbers",
        "frequency": "daily",
        "parameters": {"count": 2, "text": "{{today}}"},
        "time_of_day": time(8, 0),
        "timezone": "UTC",
    }
    values.update(fields)
    return schedules.create_schedule(owner=user, now=now, **values)


def executions(schedule=None):
    qs = ScheduleExecution.objects.order_by("due_at")
    return list(qs.filter(schedule=schedule) if schedule else qs)


def errors_of(info):
    return info.value.detail


# -- create ------------------------------------------------------------------------
class TestCreate:
    def test_daily_with_next_run_computed_from_now(self, user):
        schedule = make(user)
        schedule.refresh_from_db()
        assert schedule.owner == user
        assert schedule.next_run_at == utc(2024, 3, 5, 8, 0)  # 08:00 has passed today
        assert schedule.enabled
        assert schedule.weekday is None and schedule.day_of_month is None
        assert schedule.cron_expression == ""
        assert schedule.webhook_secret == ""
        assert schedule.last_run_at is None
        # Stored unrendered.
        assert schedule.parameters == {"count": 2, "text": "{{today}}"}

    def test_seed_example_weekly_defaults_to_monday(self, user):
        schedule = schedules.create_schedule(
            owner=user,
            now=T0,
            report_type="sales",
            title="Weekly Sales Report",
            frequency="weekly",
            parameters={"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"},
            send_email=True,
            email_recipients=["manager@example.com"],
        )
        assert schedule.weekday == 0
        assert schedule.next_run_at == utc(2024, 3, 11, 8, 0)
        assert schedule.parameters == {
            "start_date": "{{last_week_start}}",
            "end_date": "{{last_week_end}}",
        }

    def test_monthly_defaults_to_the_first_and_custom_normalises_cron(self, user):
        monthly = make(user, frequency="monthly")
        assert monthly.day_of_month == 1
        assert monthly.next_run_at == utc(2024, 4, 1, 8, 0)
        custom = make(user, frequency="custom", cron_expression="  0 9  * * 1-5 ")
        assert custom.cron_expression == "0 9 * * 1-5"
        assert custom.next_run_at == utc(2024, 3, 5, 9, 0)

    def test_in_the_schedule_zone(self, user):
        schedule = make(
            user, timezone="Europe/Paris", time_of_day=time(2, 30), now=utc(2024, 3, 30, 12)
        )
        assert schedule.next_run_at == utc(2024, 3, 31, 1, 0)  # 03:00 CEST, after the gap

    def test_fields_of_other_frequencies_are_cleared(self, user):
        schedule = make(
            user, frequency="daily", weekday=3, day_of_month=5, cron_expression="* * * * *"
        )
        assert (schedule.weekday, schedule.day_of_month, schedule.cron_expression) == (
            None,
            None,
            "",
        )

    def test_time_of_day_as_text(self, user):
        assert make(user, time_of_day="09:30").time_of_day == time(9, 30)

    def test_webhook_secret_is_generated(self, user):
        schedule = make(user, webhook_url="https://hooks.example.com/reports")
        assert len(schedule.webhook_secret) >= 40
        other = make(user, webhook_url="https://hooks.example.com/reports")
        assert other.webhook_secret != schedule.webhook_secret

    def test_disabled_has_no_next_run(self, user):
        assert make(user, enabled=False).next_run_at is None

    def test_default_title_is_the_generator_label(self, user):
        assert make(user, title="").title == "Numbers"

    @pytest.mark.parametrize(
        ("fields", "keys"),
        [
            ({"frequency": "hourly"}, {"frequency"}),
            ({"frequency": "weekly", "weekday": 7}, {"weekday"}),
            ({"frequency": "monthly", "day_of_month": 0}, {"day_of_month"}),
            ({"frequency": "monthly", "day_of_month": 32}, {"day_of_month"}),
            ({"frequency": "custom"}, {"cron_expression"}),
            ({"frequency": "custom", "cron_expression": "61 * * * *"}, {"cron_expression"}),
            ({"timezone": "Mars/Olympus"}, {"timezone"}),
            ({"time_of_day": "25:00"}, {"time_of_day"}),
            ({"priority": "asap"}, {"priority"}),
            ({"email_recipients": ["not-an-address"]}, {"email_recipients"}),
            ({"email_recipients": "a@example.com"}, {"email_recipients"}),
            ({"send_email": True}, {"email_recipients"}),
            ({"webhook_url": "ftp://example.com/x"}, {"webhook_url"}),
            ({"report_type": "nope"}, {"report_type"}),
            ({"parameters": {"count": "{{nope}}"}}, {"parameters"}),
            ({"parameters": ["x"]}, {"parameters"}),
            ({"parameters": {"count": -1}}, {"parameters"}),
            (
                {"frequency": "hourly", "timezone": "X/Y", "priority": "p"},
                {"frequency", "timezone", "priority"},
            ),
        ],
    )
    def test_bad_input_is_a_validation_error_by_field(self, user, fields, keys):
        with pytest.raises(ValidationError) as info:
            make(user, **fields)
        assert set(errors_of(info)) == keys
        assert not ReportSchedule.objects.exists()

    def test_too_many_recipients(self, user):
        with (
            override_settings(ASYNC_REPORTS={"MAX_EMAIL_RECIPIENTS": 2}),
            pytest.raises(ValidationError) as info,
        ):
            make(user, email_recipients=["a@example.com", "b@example.com", "c@example.com"])
        assert "At most 2" in str(errors_of(info)["email_recipients"][0])

    def test_unknown_field_is_a_programming_error(self, user):
        with pytest.raises(TypeError, match="next_run_at"):
            make(user, next_run_at=T0)


class TestValidateParameters:
    def test_returns_the_parameters_unrendered(self, user):
        params = {"start_date": "{{last_month_start}}", "end_date": "{{last_month_end}}"}
        assert schedules.validate_parameters("sales", params, "Europe/Paris", user) == params

    def test_unknown_variables_are_named(self, user):
        with pytest.raises(ValidationError) as info:
            schedules.validate_parameters(
                "sales", {"start_date": "{{lastweek}}", "end_date": "{{ foo }}"}, "UTC", user
            )
        message = str(errors_of(info)["parameters"][0])
        assert "lastweek, foo" in message
        assert "last_week_start" in message  # the known ones are listed

    def test_the_sample_rendering_is_validated_by_the_generator(self, user):
        with pytest.raises(ValidationError) as info:
            schedules.validate_parameters(
                "sales", {"start_date": "{{today}}", "end_date": "{{yesterday}}"}, "UTC", user
            )
        assert errors_of(info) == {"parameters": {"end_date": ["Must not be before start_date."]}}

    def test_missing_generator_fields_are_nested_under_parameters(self, user):
        with pytest.raises(ValidationError) as info:
            schedules.validate_parameters("sales", {"start_date": "{{today}}"}, "UTC", user)
        assert set(errors_of(info)["parameters"]) == {"end_date"}

    def test_bad_timezone_and_report_type(self, user):
        with pytest.raises(ValidationError) as info:
            schedules.validate_parameters("numbers", {}, "Nowhere", user)
        assert set(errors_of(info)) == {"timezone"}
        with pytest.raises(ValidationError) as info:
            schedules.validate_parameters("nope", {}, "UTC", user)
        assert set(errors_of(info)) == {"report_type"}

    def test_size_limit(self, user):
        with (
            override_settings(ASYNC_REPORTS={"MAX_PARAMETERS_BYTES": 20}),
            pytest.raises(ValidationError) as info,
        ):
            schedules.validate_parameters("numbers", {"text": "x" * 30}, "UTC", user)
        assert "at most 20 bytes" in str(errors_of(info)["parameters"][0])


# -- update and enable ------------------------------------------------------------------
class TestUpdate:
    def test_timing_change_recomputes_next_run(self, user):
        schedule = make(user)
        schedules.update_schedule(schedule, now=T0, frequency="weekly", weekday=4)
        schedule.refresh_from_db()
        assert (schedule.frequency, schedule.weekday) == ("weekly", 4)
        assert schedule.next_run_at == utc(2024, 3, 8, 8, 0)
        schedules.update_schedule(schedule, now=T0, timezone="America/New_York")
        assert schedule.next_run_at == utc(2024, 3, 8, 13, 0)  # 08:00 EST

    def test_other_changes_keep_next_run(self, user):
        schedule = make(user)
        ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=utc(2024, 3, 9, 8, 0))
        schedule.refresh_from_db()
        schedules.update_schedule(schedule, now=T0, title="Renamed", priority="high")
        schedule.refresh_from_db()
        assert (schedule.title, schedule.priority) == ("Renamed", "high")
        assert schedule.next_run_at == utc(2024, 3, 9, 8, 0)

    def test_changing_frequency_clears_fields_that_no_longer_apply(self, user):
        schedule = make(user, frequency="custom", cron_expression="0 6 * * *")
        schedules.update_schedule(schedule, now=T0, frequency="monthly", day_of_month=31)
        schedule.refresh_from_db()
        assert schedule.cron_expression == ""
        assert schedule.day_of_month == 31
        assert schedule.next_run_at == utc(2024, 3, 31, 8, 0)

    def test_invalid_update_leaves_instance_and_row_alone(self, user):
        schedule = make(user)
        before = ReportSchedule.objects.values().get(pk=schedule.pk)
        with pytest.raises(ValidationError) as info:
            schedules.update_schedule(
                schedule, now=T0, frequency="custom", cron_expression="nope", title="New"
            )
        assert set(errors_of(info)) == {"cron_expression"}
        assert (schedule.frequency, schedule.title, schedule.cron_expression) == (
            "daily",
            "Numbers",
            "",
        )
        assert ReportSchedule.objects.values().get(pk=schedule.pk) == before

    def test_parameters_validated_only_when_they_can_change(self, user):
        schedule = make(user)
        # A stored value that no longer validates does not block unrelated edits.
        ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": -5})
        schedule.refresh_from_db()
        schedules.update_schedule(schedule, title="Still editable")
        with pytest.raises(ValidationError) as info:
            schedules.update_schedule(schedule, timezone="Europe/Paris")
        assert set(errors_of(info)) == {"parameters"}
        schedules.update_schedule(schedule, parameters={"count": 1, "text": "{{yesterday}}"})
        schedule.refresh_from_db()
        assert schedule.parameters == {"count": 1, "text": "{{yesterday}}"}

    def test_webhook_secret_generated_when_a_url_is_added_and_kept(self, user):
        schedule = make(user)
        schedules.update_schedule(schedule, webhook_url="https://hooks.example.com/a")
        secret = schedule.webhook_secret
        assert secret
        schedules.update_schedule(schedule, webhook_url="https://hooks.example.com/b")
        schedule.refresh_from_db()
        assert schedule.webhook_secret == secret

    def test_disabling_through_update(self, user):
        schedule = make(user)
        schedules.update_schedule(schedule, now=T0, enabled=False)
        schedule.refresh_from_db()
        assert not schedule.enabled and schedule.next_run_at is None
        schedules.update_schedule(schedule, now=utc(2024, 3, 10, 9), enabled=True)
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 11, 8, 0)


class TestSetEnabled:
    def test_disable_clears_next_run_and_enable_recomputes_from_now(
        self, user, captured_dispatches
    ):
        schedule = make(user)
        assert schedules.set_enabled(schedule, False, now=T0).enabled is False
        assert schedule.next_run_at is None
        # Days pass while disabled: nothing runs, and enabling does not catch up.
        later = utc(2024, 3, 10, 12, 0)
        assert schedules.tick(now=later) == []
        schedules.set_enabled(schedule, True, now=later)
        assert schedule.enabled
        assert schedule.next_run_at == utc(2024, 3, 11, 8, 0)
        assert schedules.tick(now=later) == []
        assert executions() == []

    def test_idempotent(self, user):
        schedule = make(user)
        next_run = schedule.next_run_at
        schedules.set_enabled(schedule, True, now=utc(2024, 3, 20))
        assert schedule.next_run_at == next_run  # already enabled: unchanged


# -- run now -----------------------------------------------------------------------------
class TestRunNow:
    def test_creates_a_manual_execution_and_a_report(
        self, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        schedule = make(
            user,
            timezone="Europe/Paris",
            send_email=True,
            email_recipients=["boss@example.com"],
            priority="high",
        )
        now = utc(2024, 3, 31, 23, 30)
        with django_capture_on_commit_callbacks(execute=True):
            execution = schedules.run_now(schedule, now=now)
        assert execution.trigger == "manual"
        assert execution.due_at == now
        assert execution.status == Status.RUNNING
        assert execution.started_at == now
        assert execution.email_status == "pending"
        assert execution.webhook_status == "not_requested"
        report = execution.report
        assert report.user == user
        assert report.title == "Numbers"
        assert report.priority == "high"
        assert report.send_email is False  # the schedule's recipients get it, not the owner
        assert report.parameters == {"count": 2, "delay": 0.0, "text": "2024-04-01"}  # Paris date
        assert captured_dispatches == [report]
        schedule.refresh_from_db()
        assert schedule.last_run_at == now
        assert schedule.next_run_at == utc(2024, 3, 5, 7, 0)  # untouched

    def test_works_on_a_disabled_schedule_and_twice_at_the_same_instant(
        self, user, captured_dispatches
    ):
        schedule = make(user, enabled=False)
        first = schedules.run_now(schedule, now=T0)
        second = schedules.run_now(schedule, now=T0)
        assert first.pk != second.pk
        assert second.due_at == T0 + timedelta(microseconds=1)
        assert Report.objects.count() == 2

    def test_parameters_that_no_longer_validate_give_a_failed_execution(
        self, user, captured_dispatches
    ):
        schedule = make(user)
        ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "many"})
        schedule.refresh_from_db()
        execution = schedules.run_now(schedule, now=T0)
        assert execution.status == Status.FAILED
        assert execution.report is None
        assert execution.finished_at == T0
        assert execution.error == 'Invalid parameters: {"count": ["A valid integer is required."]}'
        assert not Report.objects.exists()


# -- tick ----------------------------------------------------------------------------
class TestTick:
    def test_runs_a_due_schedule_once(
        self, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        schedule = make(user, webhook_url="https://hooks.example.com/x")
        now = utc(2024, 3, 5, 8, 0, 30)
        with django_capture_on_commit_callbacks(execute=True):
            started = schedules.tick(now=now)
        assert [e.schedule_id for e in started] == [schedule.pk]
        execution = started[0]
        assert execution.due_at == utc(2024, 3, 5, 8, 0)
        assert execution.trigger == "schedule"
        assert execution.status == Status.RUNNING
        assert execution.webhook_status == "pending"
        assert execution.email_status == "not_requested"
        assert execution.report.parameters["text"] == "2024-03-05"
        assert captured_dispatches == [execution.report]
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 6, 8, 0)
        assert schedule.last_run_at == now
        # Ticking again (or later the same day) finds nothing.
        assert schedules.tick(now=now) == []
        assert schedules.tick(now=utc(2024, 3, 6, 7, 59)) == []
        assert len(executions()) == 1

    def test_not_due_and_disabled_schedules_are_ignored(self, user, captured_dispatches):
        make(user)  # due tomorrow at 08:00
        disabled = make(user)
        ReportSchedule.objects.filter(pk=disabled.pk).update(
            enabled=False, next_run_at=utc(2024, 3, 1)
        )
        assert schedules.tick(now=utc(2024, 3, 5, 7, 59)) == []
        assert executions() == []

    def test_missed_runs_collapse_into_one_catch_up_run(self, user, captured_dispatches):
        schedule = make(user)  # first run 2024-03-05 08:00
        # Beat was down for five days.
        started = schedules.tick(now=utc(2024, 3, 10, 9, 0))
        assert [e.due_at for e in started] == [utc(2024, 3, 10, 8, 0)]
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 11, 8, 0)
        assert schedules.tick(now=utc(2024, 3, 10, 23, 0)) == []

    def test_catch_up_before_today_s_run_records_yesterday_s(self, user, captured_dispatches):
        schedule = make(user)
        started = schedules.tick(now=utc(2024, 3, 10, 7, 0))
        assert [e.due_at for e in started] == [utc(2024, 3, 9, 8, 0)]
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 10, 8, 0)

    def test_catch_up_of_a_frequent_cron_is_one_run(self, user, captured_dispatches):
        schedule = make(user, frequency="custom", cron_expression="*/5 * * * *")
        started = schedules.tick(now=utc(2024, 3, 8, 12, 7))
        assert [e.due_at for e in started] == [utc(2024, 3, 8, 12, 5)]
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 8, 12, 10)

    def test_an_execution_already_recorded_is_not_duplicated(self, user, captured_dispatches):
        schedule = make(user)
        ScheduleExecution.objects.create(schedule=schedule, due_at=utc(2024, 3, 5, 8, 0))
        assert schedules.tick(now=utc(2024, 3, 5, 8, 1)) == []
        assert len(executions()) == 1
        assert not Report.objects.exists()
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 6, 8, 0)  # still moves on

    def test_batch_size(self, user, captured_dispatches):
        for _ in range(3):
            make(user)
        now = utc(2024, 3, 5, 9, 0)
        with override_settings(ASYNC_REPORTS={"SCHEDULE_BATCH_SIZE": 2}):
            assert len(schedules.tick(now=now)) == 2
            assert len(schedules.tick(now=now)) == 1
            assert schedules.tick(now=now) == []

    def test_oldest_due_first(self, user, captured_dispatches):
        late = make(user, time_of_day=time(9, 0))
        early = make(user, time_of_day=time(7, 0))
        with override_settings(ASYNC_REPORTS={"SCHEDULE_BATCH_SIZE": 1}):
            assert [e.schedule_id for e in schedules.tick(now=utc(2024, 3, 5, 9, 30))] == [early.pk]
            assert [e.schedule_id for e in schedules.tick(now=utc(2024, 3, 5, 9, 30))] == [late.pk]

    def test_parameters_invalid_at_run_time_fail_the_execution(self, user, captured_dispatches):
        schedule = make(user)
        ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "{{today}}"})
        ok = make(user)
        started = schedules.tick(now=utc(2024, 3, 5, 9, 0))
        by_schedule = {e.schedule_id: e for e in started}
        failed = by_schedule[schedule.pk]
        assert failed.status == Status.FAILED
        assert failed.report is None
        assert "Invalid parameters" in failed.error
        assert by_schedule[ok.pk].status == Status.RUNNING  # the batch went on
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2024, 3, 6, 8, 0)

    def test_removed_generator_fails_the_execution(self, user, captured_dispatches):
        schedule = make(user)
        ReportSchedule.objects.filter(pk=schedule.pk).update(report_type="gone")
        [execution] = schedules.tick(now=utc(2024, 3, 5, 9, 0))
        assert execution.status == Status.FAILED
        assert "gone" in execution.error

    def test_invalid_stored_timing_fails_once_and_stops(self, user, captured_dispatches):
        schedule = make(user)
        ReportSchedule.objects.filter(pk=schedule.pk).update(
            frequency="custom", cron_expression="garbage"
        )
        [execution] = schedules.tick(now=utc(2024, 3, 5, 9, 0))
        assert execution.status == Status.FAILED
        assert "Invalid schedule timing" in execution.error
        schedule.refresh_from_db()
        assert schedule.next_run_at is None
        assert schedules.tick(now=utc(2024, 3, 9)) == []

    def test_last_success_at(self, user, captured_dispatches):
        schedule = make(user, parameters={"count": 1, "text": "{{last_success_at}}"})
        ReportSchedule.objects.filter(pk=schedule.pk).update(created_at=utc(2024, 3, 4, 10, 0))
        # Never succeeded: the schedule's creation.
        [first] = schedules.tick(now=utc(2024, 3, 5, 8, 0))
        assert first.report.parameters["text"] == "2024-03-04T10:00:00+00:00"
        # A failed run does not count; a completed one does.
        [second] = schedules.tick(now=utc(2024, 3, 6, 8, 0))
        assert second.report.parameters["text"] == "2024-03-04T10:00:00+00:00"
        ScheduleExecution.objects.filter(pk=first.pk).update(status=Status.COMPLETED)
        ScheduleExecution.objects.filter(pk=second.pk).update(status=Status.FAILED)
        [third] = schedules.tick(now=utc(2024, 3, 7, 8, 0))
        assert third.report.parameters["text"] == "2024-03-05T08:00:00+00:00"
        # run_now sees it too, in the schedule's zone.
        ScheduleExecution.objects.filter(pk=third.pk).update(status=Status.COMPLETED)
        schedules.update_schedule(schedule, timezone="Europe/Paris")
        manual = schedules.run_now(schedule, now=utc(2024, 3, 7, 9, 0))
        assert manual.report.parameters["text"] == "2024-03-07T09:00:00+01:00"

    def test_naive_now_is_refused(self, user):
        make(user)
        with pytest.raises(ValueError):
            schedules.tick(now=datetime(2024, 3, 5, 9))


# -- DST and month ends through the tick ------------------------------------------------
def tick_every(start, end, step):
    now = start
    while now <= end:
        schedules.tick(now=now)
        now += step


class TestClock:
    def test_spring_forward_paris_daily_0230(self, user, captured_dispatches):
        schedule = make(
            user, timezone="Europe/Paris", time_of_day=time(2, 30), now=utc(2024, 3, 29, 12)
        )
        tick_every(utc(2024, 3, 29, 12), utc(2024, 4, 2, 12), timedelta(minutes=10))
        assert [e.due_at for e in executions(schedule)] == [
            utc(2024, 3, 30, 1, 30),  # 02:30 CET
            utc(2024, 3, 31, 1, 0),  # 03:00 CEST: once, at the next valid time
            utc(2024, 4, 1, 0, 30),  # 02:30 CEST
            utc(2024, 4, 2, 0, 30),
        ]

    def test_fall_back_new_york_daily_0130(self, user, captured_dispatches):
        schedule = make(
            user, timezone="America/New_York", time_of_day=time(1, 30), now=utc(2024, 11, 1, 12)
        )
        tick_every(utc(2024, 11, 1, 12), utc(2024, 11, 5, 12), timedelta(minutes=10))
        assert [e.due_at for e in executions(schedule)] == [
            utc(2024, 11, 2, 5, 30),  # 01:30 EDT
            utc(2024, 11, 3, 5, 30),  # first 01:30 (EDT); not again at 01:30 EST
            utc(2024, 11, 4, 6, 30),  # 01:30 EST
            utc(2024, 11, 5, 6, 30),
        ]

    def test_fall_back_cron(self, user, captured_dispatches):
        schedule = make(
            user,
            frequency="custom",
            cron_expression="30 1 * * *",
            timezone="America/New_York",
            now=utc(2024, 11, 2, 12),
        )
        tick_every(utc(2024, 11, 2, 12), utc(2024, 11, 4, 12), timedelta(minutes=15))
        assert [e.due_at for e in executions(schedule)] == [
            utc(2024, 11, 3, 5, 30),
            utc(2024, 11, 4, 6, 30),
        ]

    def test_monthly_31st_through_a_leap_february(self, user, captured_dispatches):
        schedule = make(user, frequency="monthly", day_of_month=31, now=utc(2024, 1, 1))
        tick_every(utc(2024, 1, 1), utc(2024, 5, 1), timedelta(hours=6))
        assert [e.due_at for e in executions(schedule)] == [
            utc(2024, 1, 31, 8, 0),
            utc(2024, 2, 29, 8, 0),
            utc(2024, 3, 31, 8, 0),
            utc(2024, 4, 30, 8, 0),
        ]


# -- outcomes -----------------------------------------------------------------------
class TestRecordOutcome:
    def started(self, user, **fields):
        make(user, **fields)
        [execution] = schedules.tick(now=utc(2024, 3, 5, 8, 0))
        return execution

    def test_completed_report_completes_its_execution_through_notify(
        self, user, captured_dispatches
    ):
        execution = self.started(user, parameters={"count": 4, "text": "{{today}}"})
        report = run_report(execution.report)
        assert report.status == "completed"
        execution.refresh_from_db()
        assert execution.status == Status.COMPLETED
        assert execution.row_count == 4
        assert execution.file_size == report.result_data["file_size"] > 0
        assert execution.finished_at == report.completed_at
        assert execution.error == ""
        # Once only.
        assert ScheduleExecution.objects.record_report_outcome(report) is None

    def test_failed_report(self, user, captured_dispatches):
        execution = self.started(user)
        services.fail_report(execution.report.pk, "ConnectionError: down")
        execution.refresh_from_db()
        assert execution.status == Status.FAILED
        assert execution.error == "ConnectionError: down"
        assert execution.row_count is None

    def test_cancelled_report(self, user, captured_dispatches):
        execution = self.started(user)
        services.cancel_report(execution.report)
        execution.refresh_from_db()
        assert execution.status == Status.FAILED
        assert execution.error == "Cancelled"
        assert execution.finished_at is not None

    def test_cancelled_after_a_retried_error_says_cancelled(self, user, captured_dispatches):
        """A report waiting for a retry still holds the attempt's error: not the outcome."""
        execution = self.started(user)
        report = execution.report
        Report.objects.filter(pk=report.pk).update(status="processing")
        assert services.schedule_retry(report, "ConnectionError: down")
        report.refresh_from_db()
        services.cancel_report(report)
        execution.refresh_from_db()
        assert (execution.status, execution.error) == (Status.FAILED, "Cancelled")

    def test_returns_the_execution_only_when_it_recorded(self, user, captured_dispatches):
        execution = self.started(user)
        report = execution.report
        assert ScheduleExecution.objects.record_report_outcome(report) is None  # still pending
        Report.objects.filter(pk=report.pk).update(
            status="completed", result_data={"row_count": 7, "file_size": 99}
        )
        report.refresh_from_db()
        recorded = ScheduleExecution.objects.record_report_outcome(report)
        assert recorded.pk == execution.pk
        assert (recorded.status, recorded.row_count, recorded.file_size) == ("completed", 7, 99)
        assert ScheduleExecution.objects.record_report_outcome(report) is None

    def test_ad_hoc_report_is_not_a_scheduled_one(self, user, captured_dispatches):
        report = services.request_report(user=user, report_type="numbers")
        Report.objects.filter(pk=report.pk).update(status="completed")
        report.refresh_from_db()
        assert ScheduleExecution.objects.record_report_outcome(report) is None


# -- scale and concurrency --------------------------------------------------------------
def test_queries_per_claimed_schedule_are_bounded(
    user, captured_dispatches, django_assert_max_num_queries
):
    now = utc(2024, 3, 5, 9, 0)
    with django_assert_max_num_queries(10):
        assert schedules.tick(now=now) == []
    for count in (1, 10):
        for _ in range(count):
            make(user, now=utc(2024, 3, 5, 9, 0) - timedelta(days=1))
        # Claim (1) + per schedule: update it, insert the execution and the report
        # (each in a savepoint) and link them: 8 statements, 4 of them queries;
        # and the active-report cap's lock and count: 2 more.
        with django_assert_max_num_queries(3 + 10 * count):
            assert len(schedules.tick(now=now)) == count
        now += timedelta(days=1)
        ReportSchedule.objects.update(enabled=False)


def test_ten_thousand_schedules(user, captured_dispatches, settings):
    """Timing printed, not asserted: run with ``-s`` to see it."""
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "MAX_ACTIVE_REPORTS_PER_USER": None}
    due = utc(2024, 3, 5, 8, 0)
    rows = [
        ReportSchedule(
            owner=user,
            report_type="numbers",
            title=f"S{n}",
            frequency="daily",
            parameters={"count": 1, "text": "{{yesterday}}"},
            # One in twenty is due now, the others later today.
            next_run_at=due if n % 20 == 0 else due + timedelta(hours=1 + n % 10),
        )
        for n in range(10_000)
    ]
    ReportSchedule.objects.bulk_create(rows, batch_size=2000)
    now = utc(2024, 3, 5, 8, 30)
    plan = running._claim_due(now).explain()
    started = clock.perf_counter()
    executions_ = schedules.tick(now=now)
    busy = clock.perf_counter() - started
    started = clock.perf_counter()
    assert schedules.tick(now=now) == []
    idle = clock.perf_counter() - started
    assert len(executions_) == 500
    assert ScheduleExecution.objects.count() == 500
    print(
        f"\n10,000 schedules: tick starting 500 runs took {busy:.2f}s "
        f"({busy / 500 * 1000:.1f} ms per run); an idle tick {idle * 1000:.1f} ms.\n"
        f"Claim query plan:\n{plan}"
    )


@pytest.mark.django_db(transaction=True)
def test_parallel_ticks_start_each_due_schedule_once(captured_dispatches, settings):
    # One owner with 60 schedules and 180 runs: past the default caps.
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "MAX_SCHEDULES_PER_USER": None,
        "MAX_ACTIVE_REPORTS_PER_USER": None,
    }
    owner = UserFactory(username="parallel")
    count = 60
    for _ in range(count):
        make(owner, now=utc(2024, 3, 1))
    rounds = [utc(2024, 3, 1, 8, 0) + timedelta(days=d, seconds=1) for d in range(1, 4)]
    for now in rounds:
        barrier = threading.Barrier(3)
        results: list[list[ScheduleExecution]] = []
        errors: list[BaseException] = []

        def beat(now=now, barrier=barrier, results=results, errors=errors):
            try:
                barrier.wait()
                results.append(schedules.tick(now=now))
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=beat) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        started = [e.schedule_id for batch in results for e in batch]
        assert len(started) == count == len(set(started))
    per_schedule = {}
    for execution in ScheduleExecution.objects.all():
        per_schedule.setdefault(execution.schedule_id, []).append(execution.due_at)
    assert len(per_schedule) == count
    assert all(
        sorted(dues) == [r.replace(second=0) for r in rounds] for dues in per_schedule.values()
    )
    assert Report.objects.count() == count * len(rounds)
    assert len(captured_dispatches) == count * len(rounds)  # each dispatched once, on commit


@pytest.mark.django_db(transaction=True)
def test_racing_inserts_of_one_run_keep_one(captured_dispatches):
    """The unique (schedule, due_at) constraint decides when two ticks reach the same run."""
    schedule = make(UserFactory(username="race"), now=utc(2024, 3, 1))
    due = utc(2024, 3, 1, 8, 0)
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def start():
        try:
            barrier.wait()
            with transaction.atomic():
                outcomes.append(
                    running._start_execution(
                        ReportSchedule.objects.select_related("owner").get(pk=schedule.pk),
                        due_at=due,
                        trigger="schedule",
                        now=due,
                    )
                )
        except BaseException as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    created = [o for o in outcomes if isinstance(o, ScheduleExecution)]
    assert len(created) == 1, outcomes
    assert outcomes.count(None) == 3
    assert ScheduleExecution.objects.count() == 1
    assert Report.objects.count() == 1
