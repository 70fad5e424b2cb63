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

import csv_report  # the sibling script: table, DSN and bare COPY

ROOT = csv_report.ROOT
METHODS = {
    "copy": "bare COPY ... TO STDOUT (psycopg 3)",
    "rows_path": "QuerySet generator, rows path",
    "fast_path": "QuerySet generator, COPY fast path",
}


def service_report(folder: Path, *, fast: bool) -> dict:
    """One CSV report of ``bench_orders`` through the service layer, as a worker runs it."""
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
            return BenchOrder.objects.count()

        def rows(self, params):
            return BenchOrder.objects.order_by("id").values_list(*csv_report.COLUMNS)

    user, _ = get_user_model().objects.get_or_create(username="bench")
    report = Report.objects.create(
        user=user, report_type="bench_orders_queryset", title="bench", format="csv"
    )
    started = time.perf_counter()
    services.generate(services.claim_report(report.pk))
    seconds = time.perf_counter() - started  # generation only: COPY's yardstick
    services.post_process(report.pk)
    report.refresh_from_db()
    assert report.status == "completed", (report.status, report.error_message)
    return {
        "seconds": seconds,
        "rows": report.result_data["row_count"],
        "checksum": report.result_data["checksum"],
    }


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
