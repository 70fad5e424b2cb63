"""The CSV fast path against bare COPY and the rows path, on the same QuerySet generator.

A generator whose ``rows()`` returns ``values_list(...)`` of the deterministic
``bench_orders`` table of ``csv_report.py`` (same setup, same database) is run
through the service layer twice: with ``copy_fast_path = False`` (the rows
path: ``.iterator()`` + ``csv.writer``) and with it on (``COPY`` through
``services.copy_export``). Bare ``COPY ... TO STDOUT`` is the yardstick.

Each report is timed whole, as a worker runs it: from the claim to the stored
file (claim, the generator's ``count()``, the rows, the upload to local
storage, the hand-over to post-processing), and to completed (post-processing:
size and checksum). Each child process first runs a small warm-up report, so
the one-time costs of a new process (imports, the cache and broker
connections) are left out, as in a worker that has run a report before. Each
method runs in its own process, so peak RSS (``ru_maxrss``) is its own; the
methods take turns ``--repeat`` times and the best time of each is shown; the
two report files' checksums are printed, to show they are the same bytes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import csv_report  # the sibling script: table, DSN and bare COPY
from bench_django import bench_order_model, register_queryset_generator, run_report, setup_django

ROOT = csv_report.ROOT
METHODS = {
    "copy": "bare COPY ... TO STDOUT (psycopg 3)",
    "rows_path": "QuerySet generator, rows path",
    "fast_path": "QuerySet generator, COPY fast path",
}
WARM_UP_ROWS = 1000


def service_report(folder: Path, *, fast: bool) -> dict:
    """One CSV report of ``bench_orders`` through the service layer, after a warm-up one."""
    setup_django(folder)
    from django_async_reports import ReportGenerator, register

    model = bench_order_model()
    report_type = register_queryset_generator(fast=fast)

    @register
    class WarmUp(ReportGenerator):
        report_type = "bench_orders_warm_up"
        columns = csv_report.COLUMNS
        copy_fast_path = fast

        def rows(self, params):
            return (
                model.objects.filter(id__lte=WARM_UP_ROWS)
                .order_by("id")
                .values_list(*csv_report.COLUMNS)
            )

    run_report(WarmUp.report_type)
    whole = run_report(report_type)
    started = time.perf_counter()
    model.objects.count()
    return {
        "seconds": whole["generate_seconds"],  # claim to stored file
        "completed_seconds": whole["seconds"],
        "rows": whole["rows"],
        "checksum": whole["checksum"],
        "count_seconds": time.perf_counter() - started,
    }


def child(method: str, out: str) -> None:
    started = time.perf_counter()
    result: dict = {"checksum": ""}
    if method == "copy":
        csv_report.run_copy(Path(out))
        result["seconds"] = result["completed_seconds"] = time.perf_counter() - started
    else:
        result = service_report(Path(out).parent, fast=method == "fast_path")
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, **result}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    csv_report.prepare(args.rows)
    tmp = ROOT / ".bench"
    tmp.mkdir(exist_ok=True)
    runs: dict[str, list[dict]] = {method: [] for method in METHODS}
    for _ in range(args.repeat):
        for method in METHODS:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", method, str(tmp / f"{method}.csv")],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = {
        method: {
            key: min(run[key] for run in results)
            for key in ("seconds", "completed_seconds", "peak_mib")
        }
        for method, results in runs.items()
    }
    copy_seconds = best["copy"]["seconds"]
    print(f"{args.rows:,} rows, best of {args.repeat} runs of each method, taking turns.")
    print("Reports timed from the claim to the stored file, and to completed (+ checksum);")
    print("Django start-up and a warm-up report excluded.")
    header = f"{'method':38} {'to file s':>9} {'rows/s':>9} {'xCOPY':>6} {'completed s':>11}"
    print(f"{header} {'xCOPY':>6} {'peak RSS MiB':>13}")
    for method, label in METHODS.items():
        b = best[method]
        print(
            f"{label:38} {b['seconds']:9.2f} {args.rows / b['seconds']:9,.0f} "
            f"{b['seconds'] / copy_seconds:6.2f} {b['completed_seconds']:11.2f} "
            f"{b['completed_seconds'] / copy_seconds:6.2f} {b['peak_mib']:13.0f}"
        )
    count = min(run["count_seconds"] for run in runs["fast_path"])
    print(f"of which the generator's count() query: {count:.2f} s")
    checksums = {run["checksum"] for method in ("rows_path", "fast_path") for run in runs[method]}
    print(f"rows path and fast path files identical: {len(checksums) == 1} ({checksums.pop()})")


if __name__ == "__main__":
    main()
