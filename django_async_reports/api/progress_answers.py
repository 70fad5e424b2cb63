"""The answer of the ``progress`` action: from the cache alone while a report runs, else the row.

Progress is the endpoint clients poll, once a second per open page, so a
running report's answer comes from the progress cache without a database
query, when the cache can vouch for it:

* the entry says ``processing`` and names the report's owner (the worker
  writes both when it claims the report), and the owner is the requester;
* the entry is fresh: written within ``max(5 s, 3 x PROGRESS_INTERVAL)``. The
  worker writes the row first, then the cache; a transition whose cache write
  failed (Redis blinking at that moment) is therefore shown late by at most
  that long, never for good;
* no permission class of the API has an object-level rule, which needs the
  row (``has_object_permission`` of DRF's ``BasePermission`` allows all).

Any other case (pending, finished, an old or missing entry, the cache down,
another user's id) answers from the row, with the cache's fresher figures
merged in while the report runs, as before.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.utils import timezone
from rest_framework.permissions import BasePermission

from .. import progress
from ..conf import report_settings
from ..models import Report

#: The rate fields of a progress answer; null when not known.
RATE_KEYS = ("rows", "total", "rows_per_second", "eta_seconds")

#: What the cache needs besides the rates to answer alone.
_CACHED_KEYS = ("owner_id", "started_at", "updated_at")


def rates_from_row(report: Report) -> dict[str, Any]:
    """The rate fields the row alone gives: a completed report's, 0 rows for a pending one.

    A running report's come from the progress cache (null without it); a
    failed or cancelled report's are null.
    """
    rates: dict[str, Any] = dict.fromkeys(RATE_KEYS)
    if report.status == Report.Status.PENDING:
        rates["rows"] = 0
    elif report.status == Report.Status.COMPLETED:
        rows, duration = report.row_count, report.duration_seconds
        rates.update(rows=rows, total=rows, eta_seconds=0)
        if rows is not None and duration:
            rates["rows_per_second"] = round(rows / duration, 1)
    return rates


def freshness_seconds() -> float:
    """How old a cache entry may be to answer alone."""
    return max(5.0, 3 * float(report_settings.PROGRESS_INTERVAL))


def object_rules_apply(permissions: list[Any]) -> bool:
    """True when a permission class checks objects, so the row must be loaded."""
    return any(
        type(permission).has_object_permission is not BasePermission.has_object_permission
        for permission in permissions
    )


def cached_entry(pk: Any) -> dict[str, Any] | None:
    """The progress cache entry of the report ``pk`` names; None when ``pk`` is no report id.

    Only a well-formed id reaches the cache: what a user types in the URL is no cache key.
    """
    try:
        report_id = uuid.UUID(str(pk))
    except ValueError:
        return None
    return progress.read_cache(report_id)


def from_cache(report_id: Any, cached: dict[str, Any] | None, user: Any) -> dict[str, Any] | None:
    """The answer for a running report of ``user`` from its cache entry; None to ask the row."""
    if not cached or cached.get("status") != Report.Status.PROCESSING:
        return None
    if any(cached.get(key) is None for key in _CACHED_KEYS):
        return None
    if str(cached["owner_id"]) != str(getattr(user, "pk", None)):
        return None  # another user's report: the row path answers its 404
    try:
        # Returned as datetimes, so that DRF renders them as it renders the row's
        # (UTC as "Z"): the answer's format does not depend on where it came from.
        started = datetime.datetime.fromisoformat(cached["started_at"])
        written = datetime.datetime.fromisoformat(cached["updated_at"])
    except (TypeError, ValueError):
        return None
    if (timezone.now() - written).total_seconds() > freshness_seconds():
        return None
    return {
        "id": str(uuid.UUID(str(report_id))),  # canonical, as typed or not
        "status": Report.Status.PROCESSING,
        "progress": int(cached.get("progress") or 0),
        "message": cached.get("message") or "",
        "started_at": started,
        "completed_at": None,
        "updated_at": written,
        **{key: cached.get(key) for key in RATE_KEYS},
    }


def from_row(report: Report, cached: dict[str, Any] | None) -> dict[str, Any]:
    """The answer from the row, with the cache's fresher figures while the report runs."""
    data: dict[str, Any] = {
        "id": str(report.pk),
        "status": report.status,
        "progress": report.progress,
        "message": report.progress_message,
        "started_at": report.started_at,
        "completed_at": report.completed_at,
        "updated_at": report.updated_at,
        **rates_from_row(report),
    }
    if report.is_active and cached and cached.get("status") == report.status:
        # The worker writes the row, then the cache: a poll in between finds
        # the row ahead, whose percentage and message then go together.
        if int(cached.get("progress") or 0) >= report.progress:
            data["progress"] = int(cached.get("progress") or 0)
            data["message"] = cached.get("message") or data["message"]
            data["updated_at"] = cached.get("updated_at") or data["updated_at"]
        if report.status == Report.Status.PROCESSING:
            data.update({key: cached.get(key) for key in RATE_KEYS})
    return data
