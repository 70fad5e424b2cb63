"""Throttled progress: the cache (polled by the API), the row, and Celery's task state.

The row is the truth; the cache (Redis in production) only makes polling
cheap, and every cache call is best effort.

Progress is written at most every ``PROGRESS_INTERVAL`` seconds and only when
it moved by ``PROGRESS_STEP`` percent or its message changed, because every
write costs a database round trip and an ``update_state`` (about 0.3 ms each:
per-row writes would double a million-row report's time). Each write is a
conditional update that doubles as the cancellation check.

The cache entry also carries the rows done, the total when known, the rate
(rows per second since the first row was asked for) and the estimated time
left, which the API's ``progress`` action serves without a database query (the claim
also writes the owner and the start, so that a poll needs no row).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.db.models.functions import Greatest
from django.utils import timezone

from . import events
from .conf import report_settings
from .models import Report

logger = logging.getLogger(__name__)


def cache_key(report_id: Any) -> str:
    return f"{report_settings.CACHE_KEY_PREFIX}:progress:{report_id}"


# The cache is a cache: the row holds every report's status and progress, so
# an unreachable cache (Redis down) costs freshness, never a request or a run.
# Its errors are logged once a minute per process, not on every write.
_CACHE_ERROR_LOG_INTERVAL = 60.0
_last_cache_error_log = -_CACHE_ERROR_LOG_INTERVAL


def _cache_failed(operation: str, report_id: Any) -> None:
    global _last_cache_error_log
    now = time.monotonic()
    if now - _last_cache_error_log >= _CACHE_ERROR_LOG_INTERVAL:
        _last_cache_error_log = now
        logger.warning(
            "The progress cache (CACHES[%r]) failed to %s report %s; progress is read "
            "from the database until it is back (this message repeats at most once a minute).",
            report_settings.CACHE,
            operation,
            report_id,
            exc_info=True,
        )


def write_cache(report_id: Any, **values: Any) -> None:
    """Merge ``values`` into the cached progress of a report, never lowering progress.

    Best effort: an unreachable cache is logged and skipped.
    """
    try:
        cache = caches[report_settings.CACHE]
        key = cache_key(report_id)
        current = cache.get(key) or {}
        if "progress" in values and current.get("progress") is not None:
            values["progress"] = max(int(values["progress"]), int(current["progress"]))
        current.update(values)
        current["updated_at"] = timezone.now().isoformat()
        cache.set(key, current, report_settings.PROGRESS_CACHE_TIMEOUT)
    except Exception:
        _cache_failed("write", report_id)


def read_cache(report_id: Any) -> dict[str, Any] | None:
    """The cached progress of a report; None when there is none or the cache is unreachable."""
    try:
        value = caches[report_settings.CACHE].get(cache_key(report_id))
    except Exception:
        _cache_failed("read", report_id)
        return None
    return value if isinstance(value, dict) else None


def delete_cache(report_id: Any) -> None:
    """Forget a report's cached progress; an unreachable cache is logged and skipped."""
    try:
        caches[report_settings.CACHE].delete(cache_key(report_id))
    except Exception:
        _cache_failed("delete", report_id)


class ProgressTracker:
    """Counts rows and publishes progress, throttled; tells the caller when to stop.

    ``advance(n)`` returns ``False`` once the report is no longer processing
    (cancelled by its requester or an admin): the caller must stop and clean up.
    """

    def __init__(
        self,
        report_id: Any,
        total: int | None,
        *,
        attempt: int | None = None,
        task_state: Callable[[int, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        report: Report | None = None,
    ) -> None:
        self.report_id = report_id
        # The report whose progress milestones are logged (events.PROGRESS); none without it.
        self.report = report
        # Writes are fenced by the run's claim: a stale run (its report taken
        # over) stops at its next write or check instead of writing over the new one.
        rows = Report.objects.all()
        self._rows = rows if attempt is None else rows.filter(attempt=attempt)
        self.total = total if total and total > 0 else None
        self.rows = 0
        self._task_state = task_state
        self._clock = clock
        self._last_write = clock()
        self._last_progress = 0
        self._last_message = ""
        self.interval = float(report_settings.PROGRESS_INTERVAL)
        self.step = int(report_settings.PROGRESS_STEP)
        self.cancel_interval = float(report_settings.CANCEL_CHECK_INTERVAL)
        self._last_check = self._last_write
        self.started = self._last_write
        self._milestones = list(events.PROGRESS_MILESTONES)

    @property
    def pace(self) -> float:
        """Longest wait between two calls of :meth:`advance` that keeps both promises.

        Progress is written every ``PROGRESS_INTERVAL`` and the cancel flag read
        every ``CANCEL_CHECK_INTERVAL`` only if rows are handed over that often.
        """
        return min(self.interval, self.cancel_interval)

    def percent(self) -> int:
        if self.total is None:
            return 0
        # Writing and uploading remain after the last row: stop at 99 until done.
        return min(99, self.rows * 100 // self.total)

    def elapsed(self) -> float:
        """Seconds since the tracker was made (the run's start, for the rate)."""
        return max(0.0, self._clock() - self.started)

    def rows_per_second(self) -> float | None:
        """Rows per second since the start; None until a row was done and time has passed."""
        elapsed = self.elapsed()
        if self.rows <= 0 or elapsed <= 0:
            return None
        return round(self.rows / elapsed, 1)

    def eta_seconds(self) -> int | None:
        """Estimated seconds left for the remaining rows; None without a total or a rate."""
        if self.total is None:
            return None
        left = max(0, self.total - self.rows)
        if left == 0:
            return 0
        rate = self.rows_per_second()
        if not rate:
            return None
        return math.ceil(left / rate)  # rounded up: "0 s left" only when done

    def snapshot(self) -> dict[str, Any]:
        """The rate fields of the cache entry: rows, total, rows_per_second, eta_seconds."""
        return {
            "rows": self.rows,
            "total": self.total,
            "rows_per_second": self.rows_per_second(),
            "eta_seconds": self.eta_seconds(),
        }

    def message(self) -> str:
        if self.total is None:
            return f"Processed {self.rows:,} rows"
        return f"Processed {self.rows:,} of {self.total:,} rows"

    def advance(self, rows: int) -> bool:
        """Record ``rows`` more rows; write progress when due. False means: stop."""
        self.rows += rows
        now = self._clock()
        percent = self.percent()
        if self._milestones and percent >= self._milestones[0]:
            self._log_milestones(percent)
        due = now - self._last_write >= self.interval
        moved = percent - self._last_progress >= self.step or self.total is None
        if due and moved:
            return self.publish(percent, self.message())
        if now - self._last_check >= self.cancel_interval:
            self._last_check = now
            return self.still_processing()
        return True

    def publish(self, percent: int, message: str) -> bool:
        """Write progress now; False when the report is no longer processing."""
        now = self._clock()
        self._last_write = self._last_check = now
        self._last_progress = max(self._last_progress, percent)
        self._last_message = message
        updated = self._rows.transition(
            self.report_id,
            Report.Status.PROCESSING,
            progress=Greatest("progress", percent),
            progress_message=message[:255],
        )
        if not updated:
            return False
        write_cache(
            self.report_id,
            status=Report.Status.PROCESSING,
            progress=percent,
            message=message,
            **self.snapshot(),
        )
        if self._task_state is not None:
            self._task_state(percent, message)
        return True

    def _log_milestones(self, percent: int) -> None:
        """One ``progress`` event per milestone passed (a fast report may pass several at once)."""
        while self._milestones and percent >= self._milestones[0]:
            milestone = self._milestones.pop(0)
            if self.report is not None:
                events.log_event(
                    events.PROGRESS,
                    self.report,
                    duration=round(self.elapsed(), 3),
                    rows=self.rows,
                    percent=milestone,
                    total=self.total,
                    rows_per_second=self.rows_per_second(),
                )

    def still_processing(self) -> bool:
        return self._rows.filter(pk=self.report_id, status=Report.Status.PROCESSING).exists()
