"""Cost of pacing the run loop by the clock, on fast rows.

Before: rows were grouped with ``itertools.islice`` in lists of ``chunk_size``
and progress and cancellation were looked at only between full lists. After:
:func:`django_async_reports.services.paced_batches` also reads the clock once
per row, so slow rows are handed over every ``PROGRESS_INTERVAL`` /
``CANCEL_CHECK_INTERVAL``. This script times both groupings over the same
1,000,000 in-memory rows (nine values each, as the CSV benchmark's table), in
one process, alternating, and prints the best of ``--repeat`` runs: the extra
nanoseconds per row are what a fast report pays. ``csv_report.py`` run on the
code before and after gives the same comparison through the whole service path.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def islice_chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """The loop before: full lists only."""
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def rows(count: int) -> Iterator[tuple]:
    row = (1, "2024-01-01T00:00:00", "customer 1", "product 1", 3, "9.99", "29.97", "paid", "eu")
    return itertools.repeat(row, count)


def timed(grouping, count: int, size: int) -> float:
    started = time.perf_counter()
    total = 0
    for batch in grouping(rows(count), size):
        total += len(batch)
    elapsed = time.perf_counter() - started
    assert total == count
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import django

    django.setup()
    from django_async_reports.services import paced_batches

    def paced(source: Iterable[Any], size: int) -> Iterator[list[Any]]:
        return paced_batches(source, size, 1.0)

    best = {"islice (before)": float("inf"), "paced_batches (after)": float("inf")}
    for _ in range(args.repeat):
        best["islice (before)"] = min(
            best["islice (before)"], timed(islice_chunks, args.rows, args.chunk_size)
        )
        best["paced_batches (after)"] = min(
            best["paced_batches (after)"], timed(paced, args.rows, args.chunk_size)
        )
    before = best["islice (before)"]
    print(f"{args.rows:,} rows in batches of {args.chunk_size}, best of {args.repeat}")
    for name, seconds in best.items():
        print(
            f"  {name:22} {seconds * 1000:8.1f} ms  {seconds / args.rows * 1e9:6.1f} ns/row  "
            f"+{(seconds - before) / args.rows * 1e9:5.1f} ns/row"
        )
    print("  For scale, csv_report.py measures the whole CSV service path per row on this machine.")


if __name__ == "__main__":
    main()
