"""Next and previous run instants: frequencies, time zones, DST changes, month ends, cron."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from django_async_reports.models import ReportSchedule
from django_async_reports.schedules.times import (
    next_run_after,
    previous_run_at_or_before,
    resolve_local,
    validate_cron,
    validate_timezone,
)

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def schedule(frequency="daily", *, at=time(8, 0), tz="UTC", weekday=None, day=None, cron=""):
    """An unsaved schedule: the functions are pure and read only its timing fields."""
    return ReportSchedule(
        frequency=frequency,
        time_of_day=at,
        timezone=tz,
        weekday=weekday,
        day_of_month=day,
        cron_expression=cron,
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(tz, *args, fold=0):
    return datetime(*args, tzinfo=tz, fold=fold)


def runs(sched, start, count):
    """``count`` successive runs after ``start``."""
    found = []
    for _ in range(count):
        start = next_run_after(sched, start)
        found.append(start)
    return found


def runs_between(sched, start, end):
    found = []
    current = next_run_after(sched, start)
    while current < end:
        found.append(current)
        current = next_run_after(sched, current)
    return found


# -- daily -------------------------------------------------------------------------
class TestDaily:
    def test_utc_same_day_and_strictly_after(self):
        s = schedule(at=time(8, 0))
        assert next_run_after(s, utc(2024, 5, 1, 7, 59)) == utc(2024, 5, 1, 8, 0)
        assert next_run_after(s, utc(2024, 5, 1, 8, 0)) == utc(2024, 5, 2, 8, 0)
        assert next_run_after(s, utc(2024, 5, 1, 8, 0, 0, 1)) == utc(2024, 5, 2, 8, 0)

    def test_result_is_aware_utc_whatever_the_input_zone(self):
        s = schedule(at=time(8, 0), tz="Europe/Paris")
        result = next_run_after(s, local(NEW_YORK, 2024, 1, 10, 12, 0))
        assert result.utcoffset() == timedelta(0)
        assert result == utc(2024, 1, 11, 7, 0)

    @pytest.mark.parametrize(
        ("after", "expected"),
        [
            (utc(2024, 1, 15, 0, 0), utc(2024, 1, 15, 7, 0)),  # winter, UTC+1
            (utc(2024, 7, 15, 0, 0), utc(2024, 7, 15, 6, 0)),  # summer, UTC+2
        ],
    )
    def test_in_the_schedule_zone(self, after, expected):
        assert next_run_after(schedule(tz="Europe/Paris"), after) == expected

    def test_local_midnight_differs_from_utc_date(self):
        # 23:30 UTC on 31 March is already 1 April in Paris: the 00:15 run is the next day's.
        s = schedule(at=time(0, 15), tz="Europe/Paris")
        assert next_run_after(s, utc(2024, 3, 31, 22, 30)) == utc(2024, 4, 1, 22, 15)

    def test_spring_forward_paris_runs_once_at_the_next_valid_time(self):
        # 31 March 2024: 02:00 -> 03:00 in Paris; 02:30 does not exist.
        s = schedule(at=time(2, 30), tz="Europe/Paris")
        found = runs(s, utc(2024, 3, 29, 12, 0), 4)
        assert found == [
            utc(2024, 3, 30, 1, 30),  # 02:30 CET
            utc(2024, 3, 31, 1, 0),  # 03:00 CEST, once
            utc(2024, 4, 1, 0, 30),  # 02:30 CEST
            utc(2024, 4, 2, 0, 30),
        ]
        assert found[1].astimezone(PARIS).time() == time(3, 0)

    def test_spring_forward_new_york(self):
        # 10 March 2024: 02:00 -> 03:00 in New York.
        s = schedule(at=time(2, 30), tz="America/New_York")
        assert runs(s, utc(2024, 3, 9, 12, 0), 2) == [
            utc(2024, 3, 10, 7, 0),
            utc(2024, 3, 11, 6, 30),
        ]
        assert utc(2024, 3, 10, 7, 0).astimezone(NEW_YORK).time() == time(3, 0)

    def test_fall_back_new_york_runs_once_at_the_first_occurrence(self):
        # 3 November 2024: 02:00 EDT -> 01:00 EST; 01:30 happens twice.
        s = schedule(at=time(1, 30), tz="America/New_York")
        found = runs(s, utc(2024, 11, 2, 12, 0), 3)
        assert found == [
            utc(2024, 11, 3, 5, 30),  # 01:30 EDT (first occurrence)
            utc(2024, 11, 4, 6, 30),  # 01:30 EST
            utc(2024, 11, 5, 6, 30),
        ]

    def test_fall_back_between_the_two_occurrences_waits_for_the_next_day(self):
        s = schedule(at=time(1, 30), tz="America/New_York")
        between = local(NEW_YORK, 2024, 11, 3, 1, 15, fold=1)  # 06:15 UTC
        assert between.astimezone(UTC) == utc(2024, 11, 3, 6, 15)
        assert next_run_after(s, between) == utc(2024, 11, 4, 6, 30)

    def test_fall_back_paris(self):
        # 27 October 2024: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        s = schedule(at=time(2, 30), tz="Europe/Paris")
        assert runs(s, utc(2024, 10, 26, 12, 0), 2) == [
            utc(2024, 10, 27, 0, 30),  # 02:30 CEST
            utc(2024, 10, 28, 1, 30),  # 02:30 CET
        ]

    @pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York", "UTC", "Australia/Sydney"])
    @pytest.mark.parametrize("at", [time(0, 0), time(1, 30), time(2, 30), time(8, 0), time(23, 59)])
    def test_exactly_one_run_per_local_day_over_a_year(self, tz, at):
        s = schedule(at=at, tz=tz)
        zone = ZoneInfo(tz)
        found = runs_between(s, utc(2023, 12, 31, 0, 0), utc(2025, 1, 2, 0, 0))
        days = [r.astimezone(zone).date() for r in found]
        assert len(days) == len(set(days))
        expected_days = {date(2024, 1, 1) + timedelta(days=n) for n in range(366)}
        assert expected_days <= set(days)
        assert found == sorted(found)
        for run in found:
            wall = run.astimezone(zone)
            # Exactly the wall time, except in a spring-forward gap (moved forward by the gap).
            assert wall.time() == at or wall.time() > at

    def test_seconds_of_time_of_day_are_kept(self):
        s = schedule(at=time(8, 0, 30))
        assert next_run_after(s, utc(2024, 5, 1, 8, 0)) == utc(2024, 5, 1, 8, 0, 30)


# -- weekly ------------------------------------------------------------------------
class TestWeekly:
    def test_defaults_to_monday(self):
        s = schedule("weekly", at=time(9, 0))
        # 2024-05-01 is a Wednesday.
        assert next_run_after(s, utc(2024, 5, 1, 12, 0)) == utc(2024, 5, 6, 9, 0)

    @pytest.mark.parametrize(
        ("weekday", "expected"),
        [
            (0, utc(2024, 5, 6, 9, 0)),
            (2, utc(2024, 5, 1, 9, 0)),  # later the same day
            (4, utc(2024, 5, 3, 9, 0)),
            (6, utc(2024, 5, 5, 9, 0)),
        ],
    )
    def test_each_weekday(self, weekday, expected):
        s = schedule("weekly", at=time(9, 0), weekday=weekday)
        assert next_run_after(s, utc(2024, 5, 1, 8, 0)) == expected

    def test_after_the_time_on_the_day_waits_a_week(self):
        s = schedule("weekly", at=time(9, 0), weekday=2)
        assert next_run_after(s, utc(2024, 5, 1, 9, 0)) == utc(2024, 5, 8, 9, 0)

    def test_weekly_on_a_spring_forward_sunday(self):
        s = schedule("weekly", at=time(2, 30), tz="Europe/Paris", weekday=6)
        assert runs(s, utc(2024, 3, 25, 0, 0), 2) == [
            utc(2024, 3, 31, 1, 0),
            utc(2024, 4, 7, 0, 30),
        ]

    def test_weekday_in_the_schedule_zone(self):
        # Monday 00:30 in Auckland is still Sunday in UTC.
        s = schedule("weekly", at=time(0, 30), tz="Pacific/Auckland", weekday=0)
        result = next_run_after(s, utc(2024, 6, 1, 0, 0))
        assert result == utc(2024, 6, 2, 12, 30)
        assert result.astimezone(ZoneInfo("Pacific/Auckland")).weekday() == 0


# -- monthly -----------------------------------------------------------------------
class TestMonthly:
    def test_defaults_to_the_first(self):
        s = schedule("monthly", at=time(6, 0))
        assert next_run_after(s, utc(2024, 5, 1, 6, 0)) == utc(2024, 6, 1, 6, 0)

    def test_day_31_runs_on_the_last_day_of_shorter_months_leap_year(self):
        s = schedule("monthly", at=time(6, 0), day=31)
        found = runs(s, utc(2024, 1, 1, 0, 0), 12)
        assert [r.date() for r in found] == [
            date(2024, 1, 31),
            date(2024, 2, 29),
            date(2024, 3, 31),
            date(2024, 4, 30),
            date(2024, 5, 31),
            date(2024, 6, 30),
            date(2024, 7, 31),
            date(2024, 8, 31),
            date(2024, 9, 30),
            date(2024, 10, 31),
            date(2024, 11, 30),
            date(2024, 12, 31),
        ]

    @pytest.mark.parametrize(
        ("year", "day", "february"),
        [
            (2023, 31, date(2023, 2, 28)),
            (2023, 29, date(2023, 2, 28)),
            (2024, 29, date(2024, 2, 29)),
            (2024, 30, date(2024, 2, 29)),
            (2100, 31, date(2100, 2, 28)),  # divisible by 100: not a leap year
            (2000, 31, date(2000, 2, 29)),  # divisible by 400: a leap year
        ],
    )
    def test_february(self, year, day, february):
        s = schedule("monthly", at=time(6, 0), day=day)
        assert next_run_after(s, utc(year, 2, 1, 0, 0)).date() == february

    def test_day_30_in_april_is_the_30th_not_the_31st(self):
        s = schedule("monthly", at=time(6, 0), day=30)
        assert runs(s, utc(2024, 3, 30, 12, 0), 2) == [
            utc(2024, 4, 30, 6, 0),
            utc(2024, 5, 30, 6, 0),
        ]

    def test_in_the_schedule_zone(self):
        # 00:30 on the 1st in Paris is still the last day of the month in UTC.
        s = schedule("monthly", at=time(0, 30), tz="Europe/Paris", day=1)
        assert next_run_after(s, utc(2024, 6, 15, 0, 0)) == utc(2024, 6, 30, 22, 30)

    def test_monthly_on_the_spring_forward_day(self):
        s = schedule("monthly", at=time(2, 30), tz="Europe/Paris", day=31)
        assert next_run_after(s, utc(2024, 3, 1, 0, 0)) == utc(2024, 3, 31, 1, 0)


# -- custom (cron) -------------------------------------------------------------------
class TestCron:
    def test_weekdays_at_eight_in_paris(self):
        s = schedule("custom", tz="Europe/Paris", cron="0 8 * * 1-5")
        # Friday 2024-05-03 after 08:00 -> Monday 2024-05-06 08:00 CEST.
        assert next_run_after(s, utc(2024, 5, 3, 7, 0)) == utc(2024, 5, 6, 6, 0)

    def test_spring_forward_like_daily(self):
        s = schedule("custom", tz="Europe/Paris", cron="30 2 * * *")
        assert runs(s, utc(2024, 3, 30, 12, 0), 2) == [
            utc(2024, 3, 31, 1, 0),
            utc(2024, 4, 1, 0, 30),
        ]

    def test_fall_back_once_at_the_first_occurrence(self):
        s = schedule("custom", tz="America/New_York", cron="30 1 * * *")
        assert runs(s, utc(2024, 11, 2, 12, 0), 2) == [
            utc(2024, 11, 3, 5, 30),
            utc(2024, 11, 4, 6, 30),
        ]

    def test_fall_back_between_the_occurrences_is_never_before_after(self):
        # cronsim reads the wall clock: 01:15 (second time) would give 01:30 EDT, an hour earlier.
        s = schedule("custom", tz="America/New_York", cron="30 1 * * *")
        assert next_run_after(s, utc(2024, 11, 3, 6, 15)) == utc(2024, 11, 4, 6, 30)

    def test_sub_hourly_runs_follow_elapsed_time_through_fall_back(self):
        s = schedule("custom", tz="America/New_York", cron="*/30 * * * *")
        found = runs(s, utc(2024, 11, 3, 4, 50), 5)
        assert found == [utc(2024, 11, 3, 5, 0) + timedelta(minutes=30 * n) for n in range(5)]

    def test_last_day_of_month(self):
        s = schedule("custom", cron="0 0 L * *")
        assert runs(s, utc(2023, 1, 31, 12, 0), 2) == [
            utc(2023, 2, 28, 0, 0),
            utc(2023, 3, 31, 0, 0),
        ]

    def test_leap_day_only(self):
        s = schedule("custom", cron="0 9 29 2 *")
        assert next_run_after(s, utc(2024, 3, 1, 0, 0)) == utc(2028, 2, 29, 9, 0)

    def test_every_fifteen_minutes_utc(self):
        s = schedule("custom", cron="*/15 * * * *")
        assert next_run_after(s, utc(2024, 5, 1, 10, 7, 30)) == utc(2024, 5, 1, 10, 15)
        assert next_run_after(s, utc(2024, 5, 1, 10, 15)) == utc(2024, 5, 1, 10, 30)

    def test_time_of_day_is_ignored(self):
        s = schedule("custom", at=time(23, 0), cron="0 6 * * *")
        assert next_run_after(s, utc(2024, 5, 1, 0, 0)) == utc(2024, 5, 1, 6, 0)


# -- previous run (catch-up) ----------------------------------------------------------
class TestPrevious:
    def test_daily(self):
        s = schedule(at=time(8, 0))
        assert previous_run_at_or_before(s, utc(2024, 5, 3, 8, 0)) == utc(2024, 5, 3, 8, 0)
        assert previous_run_at_or_before(s, utc(2024, 5, 3, 7, 59)) == utc(2024, 5, 2, 8, 0)

    def test_monthly_day_31(self):
        s = schedule("monthly", at=time(6, 0), day=31)
        assert previous_run_at_or_before(s, utc(2024, 3, 15, 0, 0)) == utc(2024, 2, 29, 6, 0)

    def test_cron(self):
        s = schedule("custom", cron="0 8 * * 1-5")
        # Sunday 2024-05-05 -> Friday 08:00.
        assert previous_run_at_or_before(s, utc(2024, 5, 5, 12, 0)) == utc(2024, 5, 3, 8, 0)
        assert previous_run_at_or_before(s, utc(2024, 5, 6, 8, 0)) == utc(2024, 5, 6, 8, 0)

    @pytest.mark.parametrize("frequency", ["daily", "custom"])
    def test_fall_back_between_occurrences(self, frequency):
        s = schedule(frequency, at=time(1, 30), tz="America/New_York", cron="30 1 * * *")
        # 01:15 EST, after the day's (single) run at 01:30 EDT.
        assert previous_run_at_or_before(s, utc(2024, 11, 3, 6, 15)) == utc(2024, 11, 3, 5, 30)

    @pytest.mark.parametrize("frequency", ["daily", "custom"])
    def test_spring_forward(self, frequency):
        s = schedule(frequency, at=time(2, 30), tz="Europe/Paris", cron="30 2 * * *")
        assert previous_run_at_or_before(s, utc(2024, 3, 31, 1, 30)) == utc(2024, 3, 31, 1, 0)
        assert previous_run_at_or_before(s, utc(2024, 3, 31, 0, 59)) == utc(2024, 3, 30, 1, 30)

    @pytest.mark.parametrize(
        "sched",
        [
            schedule(at=time(2, 30), tz="Europe/Paris"),
            schedule("weekly", at=time(1, 30), tz="America/New_York", weekday=6),
            schedule("monthly", at=time(6, 0), tz="Europe/Paris", day=31),
            schedule("custom", tz="America/New_York", cron="30 1 * * *"),
            schedule("custom", tz="Europe/Paris", cron="*/20 1-3 * * *"),
        ],
        ids=["daily", "weekly", "monthly", "cron-daily", "cron-frequent"],
    )
    def test_agrees_with_next_run_after(self, sched):
        found = runs_between(sched, utc(2024, 3, 1, 0, 0), utc(2024, 12, 1, 0, 0))
        for before, run in itertools.pairwise(found):
            assert previous_run_at_or_before(sched, run) == run
            assert previous_run_at_or_before(sched, run - timedelta(seconds=1)) == before


# -- validation -----------------------------------------------------------------------
class TestValidation:
    @pytest.mark.parametrize(
        ("expr", "normalised"),
        [
            ("0 8 * * 1-5", "0 8 * * 1-5"),
            ("  */15   *  * * *  ", "*/15 * * * *"),
            ("0 8 * * MON-FRI", "0 8 * * MON-FRI"),
            ("0 0 L * *", "0 0 L * *"),
            ("0 9 1 JAN,JUL *", "0 9 1 JAN,JUL *"),
        ],
    )
    def test_valid(self, expr, normalised):
        assert validate_cron(expr) == normalised

    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("* * * *", "5 fields"),
            ("0 0 * * * *", "5 fields"),
            ("", "5 fields"),
            ("@daily", "5 fields"),
            ("61 * * * *", "Bad minute"),
            ("0 24 * * *", "Bad hour"),
            ("0 0 32 * *", "Bad day-of-month"),
            ("0 0 30 2 *", "Bad day-of-month"),
            ("0 0 * 13 *", "Bad month"),
            ("0 0 * * 8", "Bad day-of-week"),
            ("a b c d e", "Bad minute"),
        ],
    )
    def test_invalid(self, expr, message):
        with pytest.raises(ValueError, match=message):
            validate_cron(expr)

    def test_not_a_string(self):
        with pytest.raises(ValueError, match="string"):
            validate_cron(None)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "name", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"]
    )
    def test_valid_timezones(self, name):
        assert validate_timezone(name) == name

    @pytest.mark.parametrize(
        "name", ["", "utc", "Europe/Pariss", "Mars/Olympus", "../etc/passwd", "localtime", None]
    )
    def test_invalid_timezones(self, name):
        with pytest.raises(ValueError, match="time zone"):
            validate_timezone(name)

    def test_naive_after_is_refused(self):
        with pytest.raises(ValueError, match="aware"):
            next_run_after(schedule(), datetime(2024, 1, 1))

    @pytest.mark.parametrize(
        "sched",
        [
            schedule("hourly"),
            schedule(tz="Nowhere/Land"),
            schedule("custom", cron="not a cron"),
            schedule("custom", cron=""),
            schedule("weekly", weekday=7),
            schedule("monthly", day=0),
        ],
    )
    def test_invalid_timing_raises_value_error(self, sched):
        with pytest.raises(ValueError):
            next_run_after(sched, utc(2024, 1, 1))


def test_resolve_local():
    assert resolve_local(datetime(2024, 3, 31, 2, 30), PARIS) == local(PARIS, 2024, 3, 31, 3, 0)
    assert resolve_local(datetime(2024, 3, 31, 2, 0), PARIS) == local(PARIS, 2024, 3, 31, 3, 0)
    first = resolve_local(datetime(2024, 11, 3, 1, 30), NEW_YORK)
    assert first.astimezone(UTC) == utc(2024, 11, 3, 5, 30)
    assert resolve_local(datetime(2024, 6, 1, 12, 0), PARIS) == local(PARIS, 2024, 6, 1, 12, 0)
