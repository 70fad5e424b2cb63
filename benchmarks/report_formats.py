"""Throughput and peak worker memory of 1M-row reports in each format, through the service path.

Every run is a fresh process (peak RSS, ``ru_maxrss``, belongs to it alone)
doing what a worker does: claim, generate (rows streamed to the writer),
post-process (gzip when asked, checksum, size) and store, on the table of
``csv_report.py``. Printed side by side with the anchors of
``shared/performance-anchors.md``: COPY, and the bare xlsxwriter / openpyxl
workbooks, which write values_list rows with no report machinery at all.

    .venv/bin/python benchmarks/report_formats.py --rows 1000000
    .venv/bin/python benchmarks/report_formats.py --rows 100000 --runs csv,xlsx  # flat memory?

Measured 2026-11-28, one run (rows/s, x COPY time, peak RSS; RSS at 100k rows in brackets):
COPY 970k 1.0x 35 MiB; csv 153k 6.3x 86 (83) MiB; csv.gz 130k 7.5x 84 (84) MiB;
xlsx 17.6k 55x 85 (85) MiB; ndjson 106k 9.2x 84 (84) MiB; json.gz 90k 10.7x 84 (84) MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from csv_report import COLUMNS, DB_NAME, ROOT, SELECT, prepare, run_copy

# name -> (format, compress)
RUNS = {
    "csv": ("csv", False),
    "csv.gz": ("csv", True),
    "xlsx": ("xlsx", False),
    "ndjson": ("ndjson", False),
    "json.gz": ("json", True),
}
# Anchors (1M rows, this kind of machine): label, rows/s, x COPY time, peak RSS MiB.
ANCHORS = {
    "csv": ("ORM values_list().iterator() + csv.writer", 70_000, 9.3, 60),
    "csv.gz": ("COPY streamed through gzip level 1", 488_000, 1.3, 40),
    "xlsx": ("xlsxwriter constant_memory, bare loop", 11_100, 58, 62),
}


def run_service(fmt: str, compress: bool, out: Path) -> dict:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["ASYNC_REPORTS_TEST_DB_NAME"] = DB_NAME
    os.environ["ASYNC_REPORTS_TEST_MEDIA_ROOT"] = str(out / "media")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from django_async_reports import ReportGenerator, register, services
    from django_async_reports.models import Report

    call_command("migrate", verbosity=0)

    @register
    class BenchOrders(ReportGenerator):
        report_type = "bench_orders"
        columns = COLUMNS
        chunk_size = 2000

        def count(self, params):
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM bench_orders")
                return cur.fetchone()[0]

        def rows(self, params):
            # A transaction keeps PostgreSQL from materialising a WITH HOLD cursor.
            with transaction.atomic(), connection.chunked_cursor() as cur:
                cur.execute(SELECT)
                while batch := cur.fetchmany(2000):
                    yield from batch

    user, _ = get_user_model().objects.get_or_create(username="bench")
    report = Report.objects.create(
        user=user, report_type="bench_orders", title="bench", format=fmt, compress=compress
    )
    started = time.perf_counter()  # Django start-up and migrate are not the report's time
    claimed = services.claim_report(report.pk)
    services.generate(claimed)
    generated = time.perf_counter()
    services.post_process(report.pk)
    report.refresh_from_db()
    assert report.status == "completed", (report.status, report.error_message)
    return {
        "seconds": time.perf_counter() - started,
        "post_process_seconds": time.perf_counter() - generated,
        "rows": report.result_data["row_count"],
        "file_mib": report.result_data["file_size"] / 2**20,
    }


def child(name: str, out: str) -> None:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    if name == "copy":
        started = time.perf_counter()
        rows = run_copy(path / "copy.csv")
        result = {"seconds": time.perf_counter() - started, "rows": rows,
                  "post_process_seconds": 0.0,
                  "file_mib": (path / "copy.csv").stat().st_size / 2**20}  # fmt: skip
    else:
        result = run_service(*RUNS[name], path)
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS)
    )
    parser.add_argument("--child", nargs=2, metavar=("RUN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    prepare(args.rows)
    tmp = ROOT / ".bench" / "formats"
    names = ["copy", *[n.strip() for n in args.runs.split(",") if n.strip()]]
    results = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, str(tmp / name)],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode:
            sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    copy_s = results["copy"]["seconds"]
    print(f"{args.rows:,} rows, one run each; anchors from shared/performance-anchors.md (1M rows)")
    print(f"{'run':8} {'rows/s':>9} {'xCOPY':>6} {'post s':>7} {'file MiB':>9} {'RSS MiB':>8} | "
          f"{'anchor':42} {'rows/s':>8} {'xCOPY':>6} {'RSS':>4}")  # fmt: skip
    for name, r in results.items():
        rate = args.rows / r["seconds"]  # COPY does not count its rows
        if name != "copy":
            assert r["rows"] == args.rows, (name, r["rows"])
        label, a_rate, a_ratio, a_rss = ANCHORS.get(name, ("", 0, 0, 0))
        if name == "copy":
            label, a_rate, a_ratio, a_rss = "COPY ... TO STDOUT via psycopg 3", 644_000, 1.0, 38
        anchor = f"{label:42} {a_rate:8,} {a_ratio:6.1f} {a_rss:4}" if label else ""
        ratio, post = r["seconds"] / copy_s, r["post_process_seconds"]
        print(f"{name:8} {rate:9,.0f} {ratio:6.1f} {post:7.1f} "
              f"{r['file_mib']:9.1f} {r['peak_mib']:8.0f} | {anchor}")  # fmt: skip


if __name__ == "__main__":
    main()
