"""How much: per-user caps on active reports and on schedules.

A cap is checked and taken in one transaction that holds a per-user lock
(:func:`.locks.lock_for_user`), so two requests at the same moment can never
both pass the last free place. ``None`` turns a cap off.
"""

from __future__ import annotations

from typing import Any

from ..conf import report_settings
from ..exceptions import LimitExceeded
from ..models import Report, ReportSchedule
from .locks import lock_for_user

ACTIVE = (Report.Status.PENDING, Report.Status.PROCESSING)


def check_active_place(user: Any) -> None:
    """Raise :class:`LimitExceeded` if ``user`` is at the cap now (a check, no place taken).

    For an entry point that wants its own answer before a service that takes
    the place for real (run-now: a 429 rather than a failed run).
    """
    _check_active(user)


def take_active_place(user: Any) -> None:
    """Inside the transaction creating (or re-queueing) a report: raise at the cap.

    Raises :class:`LimitExceeded` (a 429 with ``Retry-After`` in the API) when
    ``user`` already has ``MAX_ACTIVE_REPORTS_PER_USER`` pending or processing.
    """
    if report_settings.MAX_ACTIVE_REPORTS_PER_USER is None:
        return
    lock_for_user(user, "limit:active-reports")
    _check_active(user)


def _check_active(user: Any) -> None:
    cap = report_settings.MAX_ACTIVE_REPORTS_PER_USER
    if cap is None:
        return
    active = Report.objects.filter(user=user, status__in=ACTIVE).count()
    if active >= int(cap):
        raise LimitExceeded(
            f"You have {active} reports pending or processing, the most allowed at once. "
            "Wait for one to finish, or cancel one.",
            retry_after=int(report_settings.LIMIT_RETRY_AFTER),
        )


def take_schedule_place(user: Any) -> None:
    """Inside the transaction creating a schedule: raise at ``MAX_SCHEDULES_PER_USER``."""
    cap = report_settings.MAX_SCHEDULES_PER_USER
    if cap is None:
        return
    lock_for_user(user, "limit:schedules")
    owned = ReportSchedule.objects.filter(owner=user).count()
    if owned >= int(cap):
        raise LimitExceeded(
            f"You have {owned} schedules, the most allowed. Delete one to make another.",
            # A hint only: a place frees when the user deletes a schedule.
            retry_after=int(report_settings.LIMIT_RETRY_AFTER),
        )


PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The API actions ``THROTTLE_RATES`` may name.
THROTTLED_ACTIONS = ("create", "regenerate", "run_now")


def parse_rate(rate: str) -> tuple[int, int]:
    """``"60/minute"`` -> (60, 60): requests per period, as DRF writes rates; else ValueError."""
    try:
        count, period = str(rate).split("/")
        parsed = int(count), PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError):
        message = f'{rate!r} is not a rate: write requests/period, as "60/minute".'
        raise ValueError(message) from None
    if parsed[0] < 0:
        raise ValueError(f"{rate!r} is not a rate: the number of requests is negative.")
    return parsed
