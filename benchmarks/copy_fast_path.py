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

ROOT = csv_report.ROOT
METHODS = {
    "copy": "bare COPY ... TO STDOUT (psycopg 3)",
    "rows_path": "QuerySet generator, rows path",
    "fast_path": "QuerySet generator, COPY fast path",
}
WARM_UP_ROWS = 1000


def service_report(folder: Path, *, fast: bool) -> dict:
    """One CSV report of ``bench_orders`` through the service layer, after a warm-up one."""
    import os

    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["ASYNC_REPORTS_TEST_DB_NAME"] = csv_report.DB_NAME
    os.environ["ASYNC_REPORTS_TEST_MEDIA_ROOT"] = str(folder / "media")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import models

    from django_async_reports import ReportGenerator, register, services
    from django_async_reports.models import Report

    call_command("migrate", verbosity=0)

    class BenchOrder(models.Model):  # noqa: DJ008
        created_at = models.DateTimeField()
        customer = models.TextField()
        product = models.TextField()
        quantity = models.IntegerField()
        unit_price = models.DecimalField(max_digits=12, decimal_places=2)
        total = models.DecimalField(max_digits=12, decimal_places=2)
        status = models.TextField()
        region = models.TextField()

        class Meta:
            app_label = "testapp"
            db_table = "bench_orders"
            managed = False

    @register
    class BenchOrdersQuerySet(ReportGenerator):
        report_type = "bench_orders_queryset"
        columns = csv_report.COLUMNS
        chunk_size = 2000
        copy_fast_path = fast

        def count(self, params):
            return self.orders().count()

        def rows(self, params):
            return self.orders().order_by("id").values_list(*csv_report.COLUMNS)

        def orders(self):
            return BenchOrder.objects.all()

    @register
    class WarmUp(BenchOrdersQuerySet):
        report_type = "bench_orders_warm_up"

        def orders(self):
            return BenchOrder.objects.filter(id__lte=WARM_UP_ROWS)

    user, _ = get_user_model().objects.get_or_create(username="bench")

    def run(report_type: str) -> dict:
        report = Report.objects.create(
            user=user, report_type=report_type, title="bench", format="csv"
        )
        started = time.perf_counter()
        services.generate(services.claim_report(report.pk))
        stored = time.perf_counter() - started
        services.post_process(report.pk)
        completed = time.perf_counter() - started
        report.refresh_from_db()
        assert report.status == "completed", (report.status, report.error_message)
        return {
            "seconds": stored,
            "completed_seconds": completed,
            "rows": report.result_data["row_count"],
            "checksum": report.result_data["checksum"],
        }

    run("bench_orders_warm_up")
    result = run("bench_orders_queryset")
    started = time.perf_counter()
    BenchOrder.objects.count()
    result["count_seconds"] = time.perf_counter() - started
    return result


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
