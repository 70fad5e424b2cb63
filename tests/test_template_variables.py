"""Template variables: values around period boundaries, time zones, rendering, unknown names."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from django_async_reports.schedules.variables import (
    VARIABLES,
    find_unknown,
    render,
    sample_render,
    values,
)

UTC = timezone.utc
REQUIRED = {
    "today",
    "yesterday",
    "week_start",
    "week_end",
    "last_week_start",
    "last_week_end",
    "month_start",
    "month_end",
    "last_month_start",
    "last_month_end",
    "quarter_start",
    "quarter_end",
    "year_start",
    "last_success_at",
}


def at(*args, tz="UTC"):
    return values(now=datetime(*args, tzinfo=UTC), tz=ZoneInfo(tz))


def test_the_issue_s_variables_are_all_there_and_documented():
    assert set(VARIABLES) >= REQUIRED
    assert all(isinstance(text, str) and text for text in VARIABLES.values())
    assert set(values(now=datetime.now(UTC), tz=UTC)) == set(VARIABLES)


def test_an_ordinary_friday():
    v = at(2024, 3, 15, 12, 0)  # Friday 15 March 2024
    assert {k: v[k] for k in REQUIRED - {"last_success_at"}} == {
        "today": "2024-03-15",
        "yesterday": "2024-03-14",
        "week_start": "2024-03-11",
        "week_end": "2024-03-17",
        "last_week_start": "2024-03-04",
        "last_week_end": "2024-03-10",
        "month_start": "2024-03-01",
        "month_end": "2024-03-31",
        "last_month_start": "2024-02-01",
        "last_month_end": "2024-02-29",  # leap year
        "quarter_start": "2024-01-01",
        "quarter_end": "2024-03-31",
        "year_start": "2024-01-01",
    }
    assert v["last_quarter_start"] == "2023-10-01"
    assert v["last_quarter_end"] == "2023-12-31"
    assert v["year_end"] == "2024-12-31"
    assert v["last_year_start"] == "2023-01-01"
    assert v["last_year_end"] == "2023-12-31"


def test_new_year_s_day_a_monday():
    v = at(2024, 1, 1, 0, 0)
    assert v["today"] == "2024-01-01"
    assert v["yesterday"] == "2023-12-31"
    assert (v["week_start"], v["week_end"]) == ("2024-01-01", "2024-01-07")
    assert (v["last_week_start"], v["last_week_end"]) == ("2023-12-25", "2023-12-31")
    assert (v["last_month_start"], v["last_month_end"]) == ("2023-12-01", "2023-12-31")
    assert (v["quarter_start"], v["quarter_end"]) == ("2024-01-01", "2024-03-31")
    assert (v["last_quarter_start"], v["last_quarter_end"]) == ("2023-10-01", "2023-12-31")
    assert v["year_start"] == "2024-01-01"


def test_a_sunday_belongs_to_the_week_that_began_on_monday():
    v = at(2024, 3, 17, 23, 0)  # Sunday
    assert (v["week_start"], v["week_end"]) == ("2024-03-11", "2024-03-17")
    assert (v["last_week_start"], v["last_week_end"]) == ("2024-03-04", "2024-03-10")


def test_non_leap_february_and_a_week_across_months():
    v = at(2023, 3, 1, 9, 0)  # Wednesday
    assert (v["last_month_start"], v["last_month_end"]) == ("2023-02-01", "2023-02-28")
    assert (v["week_start"], v["week_end"]) == ("2023-02-27", "2023-03-05")
    assert v["yesterday"] == "2023-02-28"


@pytest.mark.parametrize(
    ("day", "quarter", "last_quarter"),
    [
        (date(2024, 3, 31), ("2024-01-01", "2024-03-31"), ("2023-10-01", "2023-12-31")),
        (date(2024, 4, 1), ("2024-04-01", "2024-06-30"), ("2024-01-01", "2024-03-31")),
        (date(2024, 6, 30), ("2024-04-01", "2024-06-30"), ("2024-01-01", "2024-03-31")),
        (date(2024, 7, 1), ("2024-07-01", "2024-09-30"), ("2024-04-01", "2024-06-30")),
        (date(2024, 9, 30), ("2024-07-01", "2024-09-30"), ("2024-04-01", "2024-06-30")),
        (date(2024, 10, 1), ("2024-10-01", "2024-12-31"), ("2024-07-01", "2024-09-30")),
        (date(2024, 12, 31), ("2024-10-01", "2024-12-31"), ("2024-07-01", "2024-09-30")),
    ],
)
def test_quarters(day, quarter, last_quarter):
    v = at(day.year, day.month, day.day, 12, 0)
    assert (v["quarter_start"], v["quarter_end"]) == quarter
    assert (v["last_quarter_start"], v["last_quarter_end"]) == last_quarter


def test_year_end():
    v = at(2024, 12, 31, 12, 0)
    assert (v["month_start"], v["month_end"]) == ("2024-12-01", "2024-12-31")
    assert (v["last_month_start"], v["last_month_end"]) == ("2024-11-01", "2024-11-30")
    assert v["year_start"] == "2024-01-01"


@pytest.mark.parametrize(
    ("tz", "today", "month_start"),
    [
        ("UTC", "2024-03-31", "2024-03-01"),
        ("Europe/Paris", "2024-04-01", "2024-04-01"),  # 01:30 CEST
        ("America/New_York", "2024-03-31", "2024-03-01"),  # 19:30 EDT
        ("Pacific/Auckland", "2024-04-01", "2024-04-01"),
        ("Pacific/Honolulu", "2024-03-31", "2024-03-01"),
    ],
)
def test_today_depends_on_the_time_zone(tz, today, month_start):
    v = at(2024, 3, 31, 23, 30, tz=tz)
    assert v["today"] == today
    assert v["month_start"] == month_start


def test_tz_may_be_a_name():
    now = datetime(2024, 3, 31, 23, 30, tzinfo=UTC)
    assert values(now=now, tz="Europe/Paris")["today"] == "2024-04-01"


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        values(now=datetime(2024, 1, 1), tz=UTC)


def test_last_success_at_is_an_iso_datetime_in_the_schedule_zone():
    now = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    last = datetime(2024, 3, 8, 7, 0, tzinfo=UTC)
    v = values(now=now, tz=ZoneInfo("Europe/Paris"), last_success_at=last)
    assert v["last_success_at"] == "2024-03-08T08:00:00+01:00"
    assert datetime.fromisoformat(v["last_success_at"]) == last
    # Without one, it is the instant of the run.
    assert values(now=now, tz=UTC)["last_success_at"] == "2024-03-15T12:00:00+00:00"


# -- rendering -------------------------------------------------------------------------
NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


def test_render_the_seed_example():
    params = {"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"}
    assert render(params, now=NOW, tz=UTC) == {
        "start_date": "2024-03-04",
        "end_date": "2024-03-10",
    }


def test_render_nested_spaces_several_per_string_and_leaves_the_rest_alone():
    params = {
        "range": {"from": "{{ month_start }}", "to": "{{month_end  }}"},
        "labels": ["Sales {{today}} vs {{yesterday}}", "{{year_start}}", 3, None],
        "count": 10,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        "{{today}}": "keys are not rendered",
        "plain": "no placeholder {here}",
    }
    original = copy.deepcopy(params)
    rendered = render(params, now=NOW, tz=UTC)
    assert rendered == {
        "range": {"from": "2024-03-01", "to": "2024-03-31"},
        "labels": ["Sales 2024-03-15 vs 2024-03-14", "2024-01-01", 3, None],
        "count": 10,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        "{{today}}": "keys are not rendered",
        "plain": "no placeholder {here}",
    }
    assert params == original  # the input is not modified


def test_render_in_the_schedule_zone():
    now = datetime(2024, 3, 31, 23, 30, tzinfo=UTC)
    assert render({"d": "{{today}}"}, now=now, tz=ZoneInfo("Europe/Paris")) == {"d": "2024-04-01"}
    assert render({"d": "{{today}}"}, now=now, tz=ZoneInfo("America/New_York")) == {
        "d": "2024-03-31"
    }


def test_render_last_success_at():
    last = datetime(2024, 3, 14, 6, 0, tzinfo=UTC)
    rendered = render({"since": "{{last_success_at}}"}, now=NOW, tz=UTC, last_success_at=last)
    assert rendered == {"since": "2024-03-14T06:00:00+00:00"}


@pytest.mark.parametrize(
    "text",
    [
        "{0.__class__}",
        "{0.__class__.__mro__}",
        "{today}",
        "%(today)s",
        "${today}",
        "{{}}",
        "{% load static %}{{ request }}",
    ],
)
def test_no_format_string_or_template_engine(text):
    assert render({"x": text}, now=NOW, tz=UTC) == {"x": text}


def test_attribute_or_call_placeholders_are_unknown_and_left_verbatim():
    params = {"a": "{{today.__class__}}", "b": "{{__import__('os').system('x')}}"}
    assert render(params, now=NOW, tz=UTC) == params
    assert find_unknown(params) == ["{{today.__class__}}", "{{__import__('os').system('x')}}"]


# -- unknown names ------------------------------------------------------------------------
def test_find_unknown_lists_each_name_once_in_order():
    params = {
        "a": "{{ last_weeek_start }}",
        "b": ["{{today}}", {"c": "{{Today}} and {{last_weeek_start}}"}],
        "d": "{{ }}",
        "e": "{{two words}}",
        5: "{{nope}}",
    }
    assert find_unknown(params) == [
        "last_weeek_start",
        "Today",
        "{{ }}",
        "{{two words}}",
        "nope",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"a": 1, "b": None, "c": [1.5, True]},
        {"a": "{today}", "b": "{ {today} }", "c": "{{today}"},
        {"a": "{{today}}", "b": "{{ last_success_at }}"},
    ],
)
def test_find_unknown_finds_nothing(params):
    assert find_unknown(params) == []


def test_every_variable_renders():
    params = {name: f"{{{{{name}}}}}" for name in VARIABLES}
    assert find_unknown(params) == []
    rendered = render(params, now=NOW, tz=UTC)
    for name, value in rendered.items():
        assert "{{" not in value
        if name != "last_success_at":
            assert date.fromisoformat(value)


def test_sample_render_uses_the_current_time():
    rendered = sample_render({"d": "{{today}}", "n": 3}, ZoneInfo("Pacific/Kiritimati"))
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert date.fromisoformat(rendered["d"]) in (today, today - timedelta(days=1))
    assert rendered["n"] == 3
    assert sample_render({"d": "{{today}}"}, "UTC")["d"] in (
        datetime.now(UTC).date().isoformat(),
        (datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
    )
