"""The CSV fast path against bare COPY and the rows path, on the same QuerySet generator.

A generator whose ``rows()`` returns ``values_list(...)`` of the deterministic
``bench_orders`` table of ``csv_report.py`` (same setup, same database) is run
through the service layer twice: with ``copy_fast_path = False`` (the rows
path: ``.iterator()`` + ``csv.writer``) and with it on (``COPY`` through
``services.copy_export``). Bare ``COPY ... TO STDOUT`` is the yardstick. Each
method runs in its own process, so peak RSS (``ru_maxrss``) is its own; the
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

import csv_report  # the sibling script: table and bare COPY
from bench_django import register_queryset_generator, run_report, setup_django

ROOT = csv_report.ROOT
METHODS = {
    "copy": "bare COPY ... TO STDOUT (psycopg 3)",
    "rows_path": "QuerySet generator, rows path",
    "fast_path": "QuerySet generator, COPY fast path",
}


def service_report(folder: Path, *, fast: bool) -> dict:
    """One CSV report of ``bench_orders`` through the service layer, as a worker runs it.

    ``seconds`` is generation only (claim to file stored), the part ``COPY``
    stands for; the whole report's time is ``run_report``'s ``seconds``.
    """
    setup_django(folder)
    result = run_report(register_queryset_generator(fast=fast))
    return {**result, "seconds": result["generate_seconds"]}


def child(method: str, out: str) -> None:
    started = time.perf_counter()
    result: dict = {"checksum": ""}
    if method == "copy":
        csv_report.run_copy(Path(out))
        result["seconds"] = time.perf_counter() - started
    else:
        result = service_report(Path(out).parent, fast=method == "fast_path")
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, **result}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    csv_report.prepare(args.rows)
    tmp = ROOT / ".bench"
    tmp.mkdir(exist_ok=True)
    results = {}
    for method in METHODS:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", method, str(tmp / f"{method}.csv")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
    copy_seconds = results["copy"]["seconds"]
    print(f"{args.rows:,} rows, one run of each method (generation time; report rows exclude")
    print("Django start-up, include claim, progress writes and the upload to local storage)")
    print(f"{'method':38} {'seconds':>8} {'rows/s':>9} {'xCOPY':>6} {'peak RSS MiB':>13}")
    for method, label in METHODS.items():
        r = results[method]
        print(
            f"{label:38} {r['seconds']:8.2f} {args.rows / r['seconds']:9,.0f} "
            f"{r['seconds'] / copy_seconds:6.2f} {r['peak_mib']:13.0f}"
        )
    same = results["rows_path"]["checksum"] == results["fast_path"]["checksum"]
    print(f"rows path and fast path files identical: {same} ({results['fast_path']['checksum']})")


if __name__ == "__main__":
    main()
