"""Create, change, enable and disable schedules: the one code path of every edit.

The REST API, the admin and host code call these functions. Every field goes
through :func:`.validation.validate_schedule`; ``next_run_at`` is computed here
by :mod:`.times` in the schedule's time zone (a disabled schedule has none),
and a webhook URL gets a generated secret.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from rest_framework.exceptions import ValidationError

from ..models import ReportSchedule
from ..services import limits
from . import times
from .validation import EDITABLE_FIELDS, TIMING_FIELDS, validate_schedule

__all__ = ["create_schedule", "set_enabled", "update_schedule"]


def create_schedule(*, owner: Any, now: datetime | None = None, **fields: Any) -> ReportSchedule:
    """Validate and save a schedule of ``owner``, with its first ``next_run_at`` after ``now``.

    Weekly schedules default to Monday, monthly ones to the 1st; fields a
    frequency does not use are cleared. A webhook URL gets a generated secret;
    its host name is not resolved here (it is at each send). Raises DRF
    ``ValidationError`` with field errors, ``TypeError`` for a field that is
    not editable, ``LimitExceeded`` when the owner has ``MAX_SCHEDULES_PER_USER``.
    """
    now = times.current_time(now)
    cleaned = validate_schedule(fields, owner=owner, resolve_webhook_host=False)
    schedule = ReportSchedule(owner=owner, **cleaned)
    if schedule.webhook_url:
        schedule.webhook_secret = _new_webhook_secret()
    schedule.next_run_at = _next_run(schedule, now)
    with transaction.atomic():
        limits.take_schedule_place(owner)
        schedule.save()
    return schedule


def update_schedule(
    schedule: ReportSchedule, *, now: datetime | None = None, **fields: Any
) -> ReportSchedule:
    """Change some fields of ``schedule``; ``next_run_at`` is recomputed when timing changes.

    Parameters are validated again when they, the report type or the time zone
    change, a webhook URL when it changes. Only the changed columns are saved.
    On a ``ValidationError`` the instance is left as it was.
    """
    now = times.current_time(now)
    cleaned = validate_schedule(
        fields, owner=schedule.owner, instance=schedule, resolve_webhook_host=False
    )
    names = [*EDITABLE_FIELDS, "webhook_secret", "next_run_at"]
    before = {name: getattr(schedule, name) for name in names}
    try:
        for name, value in cleaned.items():
            setattr(schedule, name, value)
        if schedule.webhook_url and not schedule.webhook_secret:
            schedule.webhook_secret = _new_webhook_secret()
        timing_changed = any(before[n] != getattr(schedule, n) for n in TIMING_FIELDS)
        if timing_changed or before["enabled"] != schedule.enabled:
            schedule.next_run_at = _next_run(schedule, now)
    except ValueError:
        for name, value in before.items():
            setattr(schedule, name, value)
        raise
    changed = [name for name in names if before[name] != getattr(schedule, name)]
    if changed:
        # Only the changed columns: a tick moving next_run_at meanwhile is kept.
        schedule.save(update_fields=[*changed, "updated_at"])
    return schedule


def set_enabled(
    schedule: ReportSchedule, enabled: bool, *, now: datetime | None = None
) -> ReportSchedule:
    """Enable or disable ``schedule`` and return it refreshed.

    Enabling computes the next run from now, so the runs missed while the
    schedule was disabled never fire; disabling clears ``next_run_at``.
    """
    now = times.current_time(now)
    next_run_at = None
    if enabled:
        try:
            next_run_at = times.next_run_after(schedule, now)
        except ValueError as exc:
            raise ValidationError([f"The schedule cannot be enabled: {exc}"]) from exc
    ReportSchedule.objects.filter(pk=schedule.pk, enabled=not enabled).update(
        enabled=enabled, next_run_at=next_run_at, updated_at=now
    )
    schedule.refresh_from_db()
    return schedule


def _next_run(schedule: ReportSchedule, now: datetime) -> datetime | None:
    """The first run strictly after ``now``, or None for a disabled schedule."""
    if not schedule.enabled:
        return None
    return times.next_run_after(schedule, now)


def _new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
