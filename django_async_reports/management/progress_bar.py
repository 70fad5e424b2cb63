"""The terminal progress bar of ``generate_report --wait``: rows, rate and time left.

The figures come from the progress cache when it has them (``rows``,
``total``, ``rows_per_second``, ``eta_seconds``); otherwise they are worked
out here from the row: rows from its progress message ("Processed 1,200 of
5,000 rows"), the rate from the time since it started, the time left from
the percentage done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_ROWS = re.compile(r"Processed (?P<rows>[\d,]+)(?: of (?P<total>[\d,]+))? rows")


@dataclass(frozen=True)
class Snapshot:
    """Where a run stands: what the bar shows."""

    status: str
    percent: int
    rows: int | None = None
    total: int | None = None
    rate: float | None = None  # rows per second
    eta: float | None = None  # seconds left
    message: str = ""


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def snapshot(
    *,
    status: str,
    percent: int,
    message: str,
    started_at: datetime | None,
    now: datetime,
    cached: dict[str, Any] | None = None,
) -> Snapshot:
    """Where a run stands, from its row (status, percent, message, start) and cache entry."""
    cached = cached or {}
    rows = _number(cached.get("rows"))
    total = _number(cached.get("total"))
    found = _ROWS.search(message or "")
    if rows is None and found:
        rows = int(found["rows"].replace(",", ""))
        if total is None and found["total"]:
            total = int(found["total"].replace(",", ""))
    elapsed = (now - started_at).total_seconds() if started_at else None
    rate = _seconds(cached.get("rows_per_second"))
    if rate is None and rows and elapsed and elapsed > 0:
        rate = rows / elapsed
    eta = _seconds(cached.get("eta_seconds"))
    if eta is None and status == "processing":
        if total and rows is not None and rate:
            eta = max(0.0, (total - rows) / rate)
        elif 0 < percent < 100 and elapsed:
            eta = elapsed * (100 - percent) / percent
    return Snapshot(status, percent, rows, total, rate, eta, message)


def duration(seconds: float | None) -> str:
    """``75`` as ``1:15``, ``3700`` as ``1:01:40``; ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(state: Snapshot, width: int = 30) -> str:
    """One line: ``[#####.....]  50% 5,000/10,000 rows  1,234 rows/s  0:04 left  processing``."""
    percent = max(0, min(100, state.percent))
    filled = width * percent // 100
    parts = [f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d}%"]
    if state.rows is not None:
        parts.append(f"{state.rows:,}" + (f"/{state.total:,}" if state.total else "") + " rows")
    parts.append(f"{state.rate:,.0f} rows/s" if state.rate is not None else "-- rows/s")
    parts.append(f"{duration(state.eta)} left")
    parts.append(state.status)
    return "  ".join(parts)
