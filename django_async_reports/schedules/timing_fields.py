"""The timing fields of a schedule: time of day, time zone, and the fields of its frequency.

Part of the one schedule validator (:mod:`.validation`); split out because
timing is a concern of its own. Each rule takes Python values and raises DRF
``ValidationError``, or records field errors, as the validator collects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from rest_framework.exceptions import ValidationError

from ..conf import report_settings
from ..models import ReportSchedule
from . import times

Frequency = ReportSchedule.Frequency

# Fields of one frequency only: (name, frequency, value when omitted, allowed, message).
_WEEKDAY = "Give a weekday from 0 (Monday) to 6 (Sunday)."
_DAY_OF_MONTH = "Give a day of the month from 1 to 31 (past a month's end: its last day)."
_FREQUENCY_FIELDS = (
    ("weekday", Frequency.WEEKLY, times.DEFAULT_WEEKDAY, range(7), _WEEKDAY),
    ("day_of_month", Frequency.MONTHLY, times.DEFAULT_DAY_OF_MONTH, range(1, 32), _DAY_OF_MONTH),
)


def clean_time(value: Any) -> time:
    """A wall-clock time, to the second; text in ISO form (``HH:MM``) is parsed."""
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, time):
        raise ValidationError("Give a time of day as HH:MM or HH:MM:SS.", code="invalid")
    return value.replace(microsecond=0, tzinfo=None)


def clean_timezone(value: Any) -> str:
    try:
        return times.validate_timezone(value.strip() if isinstance(value, str) else value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid") from exc


def clean_frequency_fields(
    frequency: str,
    current: Mapping[str, Any],
    data: Mapping[str, Any],
    cleaned: dict[str, Any],
    errors: dict[str, Any],
    *,
    refuse: bool,
    stored_cron: str | None = None,
) -> None:
    """``weekday``, ``day_of_month`` and ``cron_expression``: checked where they apply.

    A cron expression other than ``stored_cron`` (the schedule's, kept as it is)
    must run at most every ``MIN_CRON_INTERVAL`` seconds.
    """
    for name, applies_to, default, allowed, message in _FREQUENCY_FIELDS:
        value = current[name]
        if frequency == applies_to:
            if value is None:
                value = default
            if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
                errors[name] = [message]
            else:
                cleaned[name] = value
        elif refuse and data.get(name) is not None:
            errors[name] = [
                f'Only a "{applies_to}" schedule takes {name}; this one is "{frequency}".'
            ]
        else:
            cleaned[name] = None

    expression = current["cron_expression"]
    if expression is None:
        expression = ""
    if isinstance(expression, str):
        expression = expression.strip()
    if frequency == Frequency.CUSTOM:
        if expression == "":
            errors["cron_expression"] = [
                'A "custom" schedule needs a cron expression, such as "0 8 * * 1-5".'
            ]
            return
        try:
            cleaned["cron_expression"] = times.validate_cron(expression)
        except ValueError as exc:
            errors["cron_expression"] = [str(exc)]
            return
        if cleaned["cron_expression"] != stored_cron:
            minimum = report_settings.MIN_CRON_INTERVAL
            message = times.too_frequent(cleaned["cron_expression"], minimum)
            if message:
                errors["cron_expression"] = [message]
    elif refuse and "cron_expression" in data and expression != "":
        errors["cron_expression"] = [
            f'Only a "custom" schedule takes a cron expression; this one is "{frequency}".'
        ]
    else:
        cleaned["cron_expression"] = ""
