"""Template variables in schedule parameters: ``{"start_date": "{{last_week_start}}"}``.

A fixed list of names (:data:`VARIABLES`), replaced inside string values
(nested dicts and lists included; keys and non-string values are left alone)
by a regular expression. There is no template engine and no ``str.format``:
user input is never evaluated, so ``"{0.__class__}"`` stays as it is.

Dates are ISO ``YYYY-MM-DD`` computed in the schedule's time zone (``tz``, a
``tzinfo`` or an IANA name) at the run's instant; weeks run Monday to Sunday.
``last_success_at`` is an ISO 8601 datetime with the zone's offset
(``2024-03-04T08:00:00+01:00``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from .times import get_zone

__all__ = ["VARIABLES", "find_unknown", "render", "sample_render", "values"]

VARIABLES: dict[str, str] = {
    "today": "The run's date.",
    "yesterday": "The day before the run's date.",
    "week_start": "Monday of the run's week.",
    "week_end": "Sunday of the run's week.",
    "last_week_start": "Monday of the week before the run's week.",
    "last_week_end": "Sunday of the week before the run's week.",
    "month_start": "First day of the run's month.",
    "month_end": "Last day of the run's month.",
    "last_month_start": "First day of the month before the run's month.",
    "last_month_end": "Last day of the month before the run's month.",
    "quarter_start": "First day of the run's calendar quarter.",
    "quarter_end": "Last day of the run's calendar quarter.",
    "last_quarter_start": "First day of the quarter before the run's quarter.",
    "last_quarter_end": "Last day of the quarter before the run's quarter.",
    "year_start": "1 January of the run's year.",
    "year_end": "31 December of the run's year.",
    "last_year_start": "1 January of the year before the run's year.",
    "last_year_end": "31 December of the year before the run's year.",
    "last_success_at": (
        "When the schedule's last successful run was due (ISO 8601 datetime with offset); "
        "before any successful run, when the schedule was created."
    ),
}

# Anything between double braces is a placeholder; an unknown name is an error.
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r" *([A-Za-z_][A-Za-z0-9_]*) *")


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_end(day: date) -> date:
    start = _quarter_start(day)
    return _month_end(start.replace(month=start.month + 2))


def _zone(tz: tzinfo | str) -> tzinfo:
    if isinstance(tz, str):
        return get_zone(tz)
    return tz


def values(
    *, now: datetime, tz: tzinfo | str, last_success_at: datetime | None = None
) -> dict[str, str]:
    """Every variable's value at ``now`` in ``tz``; ``last_success_at`` defaults to ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime.")
    tz = _zone(tz)
    today = now.astimezone(tz).date()
    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    last_month_end = month_start - timedelta(days=1)
    quarter_start = _quarter_start(today)
    last_quarter_end = quarter_start - timedelta(days=1)
    success = (last_success_at or now).astimezone(tz)
    dates = {
        "today": today,
        "yesterday": today - timedelta(days=1),
        "week_start": week_start,
        "week_end": week_start + timedelta(days=6),
        "last_week_start": week_start - timedelta(days=7),
        "last_week_end": week_start - timedelta(days=1),
        "month_start": month_start,
        "month_end": _month_end(today),
        "last_month_start": last_month_end.replace(day=1),
        "last_month_end": last_month_end,
        "quarter_start": quarter_start,
        "quarter_end": _quarter_end(today),
        "last_quarter_start": _quarter_start(last_quarter_end),
        "last_quarter_end": last_quarter_end,
        "year_start": date(today.year, 1, 1),
        "year_end": date(today.year, 12, 31),
        "last_year_start": date(today.year - 1, 1, 1),
        "last_year_end": date(today.year - 1, 12, 31),
    }
    result = {name: value.isoformat() for name, value in dates.items()}
    result["last_success_at"] = success.isoformat()
    return result


def _placeholder_name(match: re.Match[str]) -> str | None:
    """The variable a ``{{...}}`` placeholder names, or None when it is not a bare name."""
    name = _NAME.fullmatch(match.group(1))
    return name.group(1) if name else None


def _walk(value: Any, on_string: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return on_string(value)
    if isinstance(value, Mapping):
        return {key: _walk(item, on_string) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(item, on_string) for item in value]
    return value


def find_unknown(parameters: Any) -> list[str]:
    """Placeholders in ``parameters`` that are not variables, in order, without repeats.

    A placeholder that is not a bare name (``{{ a b }}``, ``{{}}``) is listed as written.
    """
    unknown: list[str] = []

    def collect(text: str) -> str:
        for match in _PLACEHOLDER.finditer(text):
            name = _placeholder_name(match)
            if name not in VARIABLES:
                label = name if name is not None else match.group(0)
                if label not in unknown:
                    unknown.append(label)
        return text

    _walk(parameters, collect)
    return unknown


def render(
    parameters: Mapping[str, Any],
    *,
    now: datetime,
    tz: tzinfo | str,
    last_success_at: datetime | None = None,
) -> dict[str, Any]:
    """A copy of ``parameters`` with every known ``{{name}}`` replaced by its value.

    Unknown placeholders are left as written (:func:`find_unknown` rejects them
    at create time). ``last_success_at`` defaults to ``now``.
    """
    context = values(now=now, tz=tz, last_success_at=last_success_at)

    def substitute(match: re.Match[str]) -> str:
        name = _placeholder_name(match)
        return context[name] if name is not None and name in context else match.group(0)

    rendered = _walk(dict(parameters), lambda text: _PLACEHOLDER.sub(substitute, text))
    return dict(rendered)


def sample_render(parameters: Mapping[str, Any], tz: tzinfo | str) -> dict[str, Any]:
    """``parameters`` rendered as if the schedule ran now, to validate them at create time."""
    from django.utils import timezone

    return render(parameters, now=timezone.now(), tz=tz)
