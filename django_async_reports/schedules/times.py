"""When a schedule runs: next and previous run instants, computed in its own time zone.

Pure functions (no database; the clock is read only by :func:`current_time`,
for the ``now=`` argument of the services). Wall-clock times are resolved in the
schedule's IANA zone with these DST rules, the same as Debian cron (and
``cronsim``, which evaluates custom cron expressions):

* a time that does not exist (spring forward: 02:30 in Paris on the last
  Sunday of March) runs once, at the next valid time (03:00);
* a time that happens twice (fall back: 01:30 in New York on the first Sunday
  of November) runs once, at its first occurrence.

A monthly schedule on a day past the end of a month (31, or 29-30 in February)
runs on that month's last day.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

__all__ = [
    "ScheduleTiming",
    "current_time",
    "next_run_after",
    "previous_run_at_or_before",
    "resolve_local",
    "validate_cron",
    "validate_timezone",
]

UTC = timezone.utc

DAILY, WEEKLY, MONTHLY, CUSTOM = "daily", "weekly", "monthly", "custom"
DEFAULT_WEEKDAY = 0  # Monday
DEFAULT_DAY_OF_MONTH = 1
CRON_FIELDS = "minute hour day-of-month month day-of-week"

# Days searched for the next (or previous) wall-clock occurrence: a monthly
# schedule needs at most 62, the margin covers days skipped by a zone change.
_SEARCH_DAYS = 400


class ScheduleTiming(Protocol):
    """The fields of a :class:`~django_async_reports.models.ReportSchedule` used here."""

    frequency: str
    cron_expression: str
    time_of_day: time
    weekday: int | None
    day_of_month: int | None
    timezone: str


# -- validation ----------------------------------------------------------------
# Names in the zone database that depend on the machine rather than a place.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone (``Europe/Paris``), else raise ValueError."""
    if not isinstance(name, str) or not name:
        raise ValueError("Give an IANA time zone name, such as 'Europe/Paris' or 'UTC'.")
    if name not in _known_timezones():
        raise ValueError(
            f"{name!r} is not a known IANA time zone; use a name such as "
            "'Europe/Paris', 'America/New_York' or 'UTC'."
        )
    get_zone(name)
    return name


def get_zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of ``name``; ValueError when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a known IANA time zone.") from exc


def validate_cron(expr: str) -> str:
    """Return the normalised five-field cron expression, or raise ValueError saying why.

    Five fields (minute hour day-of-month month day-of-week), as in crontab;
    names (``MON``, ``JAN``), ranges, steps and ``L`` are accepted.
    """
    if not isinstance(expr, str):
        raise ValueError("A cron expression must be a string.")
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"A cron expression has 5 fields ({CRON_FIELDS}), for example "
            f"'0 8 * * 1-5'; got {len(fields)}."
        )
    normalised = " ".join(fields)
    try:
        iterator = CronSim(normalised, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(
            f"Invalid cron expression {normalised!r}: {exc}. Its 5 fields are "
            f"{CRON_FIELDS}, for example '0 8 * * 1-5'."
        ) from exc
    try:
        next(iterator)
    except StopIteration:
        raise ValueError(f"The cron expression {normalised!r} never matches a date.") from None
    return normalised


# -- wall-clock resolution -------------------------------------------------------
def shortest_cron_interval(expr: str, runs: int = 1500) -> timedelta:
    """The shortest time between two runs of a valid cron expression, over its next ``runs``.

    Counted in UTC from a fixed instant: enough to see every pattern within a
    day, and the spacing of sparse ones (``0-4 8 1 1 *`` runs 5 minutes in a row).
    """
    iterator = CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    shortest = timedelta.max
    previous = next(iterator)
    for _ in range(runs):
        try:
            current = next(iterator)
        except StopIteration:
            break
        shortest = min(shortest, current - previous)
        previous = current
    return shortest


def too_frequent(expr: str, minimum: int | None) -> str:
    """Why ``expr`` runs more often than every ``minimum`` seconds; "" if it does not (or None)."""
    if not minimum:
        return ""
    shortest = shortest_cron_interval(expr)
    if shortest.total_seconds() >= int(minimum):
        return ""
    return (
        f"Runs may be at least {_duration(int(minimum))} apart; this expression runs "
        f"{_duration(int(shortest.total_seconds()))} apart."
    )


def _duration(seconds: int) -> str:
    if seconds % 60 == 0 and seconds >= 60:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _is_imaginary(local: datetime) -> bool:
    return local.replace(tzinfo=None) != local.astimezone(UTC).astimezone(local.tzinfo).replace(
        tzinfo=None
    )


def resolve_local(naive: datetime, tz: ZoneInfo) -> datetime:
    """The aware instant of wall-clock ``naive`` in ``tz`` (see the module's DST rules)."""
    local = naive.replace(tzinfo=tz, fold=0)
    if not _is_imaginary(local):
        return local
    # In a gap: the first whole minute that exists is the end of the gap.
    candidate = naive.replace(second=0, microsecond=0, fold=0)
    while _is_imaginary(candidate.replace(tzinfo=tz)):
        candidate += timedelta(minutes=1)
    return candidate.replace(tzinfo=tz)


# -- daily, weekly, monthly ------------------------------------------------------
def _runs_on(schedule: ScheduleTiming, day: date) -> bool:
    if schedule.frequency == DAILY:
        return True
    if schedule.frequency == WEEKLY:
        weekday = DEFAULT_WEEKDAY if schedule.weekday is None else schedule.weekday
        return day.weekday() == weekday
    if schedule.frequency == MONTHLY:
        wanted = DEFAULT_DAY_OF_MONTH if schedule.day_of_month is None else schedule.day_of_month
        last = calendar.monthrange(day.year, day.month)[1]
        return day.day == min(wanted, last)
    raise ValueError(f"Unknown frequency {schedule.frequency!r}.")


def _occurrences(schedule: ScheduleTiming, start: date, step: int) -> Iterator[datetime]:
    """Run instants on the days from ``start`` onwards (``step=1``) or backwards (-1)."""
    tz = get_zone(schedule.timezone)
    run_time = schedule.time_of_day.replace(tzinfo=None)
    for offset in range(_SEARCH_DAYS):
        day = start + timedelta(days=offset * step)
        if _runs_on(schedule, day):
            yield resolve_local(datetime.combine(day, run_time), tz).astimezone(UTC)


def _check(schedule: ScheduleTiming) -> None:
    if schedule.frequency not in (DAILY, WEEKLY, MONTHLY, CUSTOM):
        raise ValueError(f"Unknown frequency {schedule.frequency!r}.")
    if schedule.frequency == WEEKLY and schedule.weekday not in (None, *range(7)):
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {schedule.weekday!r}.")
    if schedule.frequency == MONTHLY and schedule.day_of_month not in (None, *range(1, 32)):
        raise ValueError(f"day_of_month must be 1 to 31, not {schedule.day_of_month!r}.")


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime.")
    return value.astimezone(UTC)


# -- public ------------------------------------------------------------------------
def next_run_after(schedule: ScheduleTiming, after: datetime) -> datetime:
    """The first run instant strictly after ``after``, as an aware UTC datetime.

    Raises ValueError when the schedule's timing is invalid (unknown zone,
    frequency or cron expression) or never matches.
    """
    after = _aware(after, "after")
    _check(schedule)
    tz = get_zone(schedule.timezone)
    if schedule.frequency == CUSTOM:
        return _cron_next(validate_cron(schedule.cron_expression), after, tz)
    # Start a day early: resolving a wall time in a gap can move it past midnight.
    start = after.astimezone(tz).date() - timedelta(days=1)
    for instant in _occurrences(schedule, start, 1):
        if instant > after:
            return instant
    raise ValueError("The schedule has no run in the coming year.")


def previous_run_at_or_before(schedule: ScheduleTiming, instant: datetime) -> datetime | None:
    """The last run instant at or before ``instant`` (aware UTC), or None if none is near.

    The tick uses it to collapse the runs missed while beat was down into one.
    """
    instant = _aware(instant, "instant")
    _check(schedule)
    tz = get_zone(schedule.timezone)
    if schedule.frequency == CUSTOM:
        return _cron_previous(validate_cron(schedule.cron_expression), instant, tz)
    start = instant.astimezone(tz).date() + timedelta(days=1)
    for candidate in _occurrences(schedule, start, -1):
        if candidate <= instant:
            return candidate
    return None


def current_time(now: datetime | None) -> datetime:
    """``now`` (an aware datetime, for tests and replays) or the current time."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime.")
    return now


# -- custom (cron) -----------------------------------------------------------------
def _cron_next(expr: str, after: datetime, tz: ZoneInfo) -> datetime:
    iterator = CronSim(expr, after.astimezone(tz))
    try:
        # cronsim reads the wall clock, which repeats itself on fall-back days:
        # skip the results that are not after ``after`` as an instant.
        for _ in range(10_000):
            result = next(iterator).astimezone(UTC)
            if result > after:
                return result
    except StopIteration:
        pass
    raise ValueError(f"The cron expression {expr!r} has no run after {after.isoformat()}.")


def _cron_previous(expr: str, instant: datetime, tz: ZoneInfo) -> datetime | None:
    # Iterating backwards yields times strictly before the start: start one
    # second after ``instant`` (cron times are whole minutes).
    start = instant.replace(microsecond=0) + timedelta(seconds=1)
    iterator = CronSim(expr, start.astimezone(tz), reverse=True)
    try:
        found = next(iterator).astimezone(UTC)
        while found > instant:
            found = next(iterator).astimezone(UTC)
    except StopIteration:
        return None
    # The wall clock may hide a later run (fall-back day): step forward to it.
    for _ in range(4):
        following = _cron_next(expr, found, tz)
        if following > instant:
            break
        found = following
    return found
