"""Throughput and peak memory of a CSV report through the service layer.

Each method runs in its own process so peak RSS (``ru_maxrss``) belongs to it
alone. The table is a deterministic copy of the anchors' ``orders`` shape,
created with ``generate_series`` in a database of its own.
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

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "async_reports_bench"
COLUMNS = ["id", "created_at", "customer", "product", "quantity", "unit_price", "total",
           "status", "region"]
SELECT = f"SELECT {', '.join(COLUMNS)} FROM bench_orders ORDER BY id"

# Anchors (1M rows, this kind of machine): rows/s, x COPY time, peak RSS MiB.
ANCHORS = {
    "copy": ("COPY ... TO STDOUT via psycopg 3", 644_000, 1.0, 38),
    "cursor_csv": ("server-side cursor + csv.writer", 109_000, 5.9, 41),
    "service": ("ORM values_list().iterator() + csv.writer", 70_000, 9.3, 60),
}


def dsn() -> str:
    return f"host=127.0.0.1 user=postgres dbname={DB_NAME}"


def prepare(rows: int) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            c.execute(f"CREATE DATABASE {DB_NAME}")
    with psycopg.connect(dsn(), autocommit=True) as c:
        have = c.execute("SELECT to_regclass('bench_orders') IS NOT NULL").fetchone()[0]
        if have and c.execute("SELECT count(*) FROM bench_orders").fetchone()[0] == rows:
            return
        c.execute("DROP TABLE IF EXISTS bench_orders")
        c.execute(
            """
            CREATE TABLE bench_orders AS
            SELECT g AS id,
                   timestamp '2024-01-01' + (g %% 525600) * interval '1 minute' AS created_at,
                   'Customer ' || (g %% 50000) AS customer,
                   'Product ' || (g %% 2000) AS product,
                   1 + g %% 9 AS quantity,
                   round((5 + (g %% 1000) / 10.0)::numeric, 2) AS unit_price,
                   round(((1 + g %% 9) * (5 + (g %% 1000) / 10.0))::numeric, 2) AS total,
                   (ARRAY['pending','paid','shipped','cancelled'])[1 + g %% 4] AS status,
                   (ARRAY['north','south','east','west'])[1 + g %% 4] AS region
            FROM generate_series(1, %s) AS g
            """,
            [rows],
        )
        c.execute("ALTER TABLE bench_orders ADD PRIMARY KEY (id)")
        c.execute("VACUUM ANALYZE bench_orders")


def run_copy(out: Path) -> int:
    import psycopg

    with psycopg.connect(dsn()) as c, c.cursor() as cur, open(out, "wb") as fh:
        with cur.copy(f"COPY ({SELECT}) TO STDOUT WITH CSV HEADER") as copy:
            for block in copy:
                fh.write(block)
    return -1


def run_cursor_csv(out: Path) -> int:
    import csv

    import psycopg

    n = 0
    with psycopg.connect(dsn()) as c, c.cursor(name="bench") as cur, open(
        out, "w", newline="", encoding="utf-8"
    ) as fh:
        cur.itersize = 2000
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        cur.execute(SELECT)
        for row in cur:
            writer.writerow(row)
            n += 1
    return n


def run_service(out: Path) -> int:
    """A registered generator run by the real service path: claim, generate, post-process."""
    global STARTED
    result = service_report(out.parent)
    STARTED = time.perf_counter() - result["seconds"]  # Django start-up and migrate excluded
    return int(result["rows"])


def service_report(folder: Path, fmt: str = "csv", compress: bool = False) -> dict:
    """Run one report of ``bench_orders`` through the service layer, as a worker does.

    Returns its seconds (claim to completed, Django start-up and migrate
    excluded), post-processing seconds, rows and stored file size.
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["ASYNC_REPORTS_TEST_DB_NAME"] = DB_NAME
    os.environ["ASYNC_REPORTS_TEST_MEDIA_ROOT"] = str(folder / "media")
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
    started = time.perf_counter()
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


STARTED = 0.0


def child(method: str, out: str) -> None:
    global STARTED
    STARTED = time.perf_counter()
    rows = {"copy": run_copy, "cursor_csv": run_cursor_csv, "service": run_service}[method](
        Path(out)
    )
    elapsed = time.perf_counter() - STARTED
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, "seconds": elapsed, "rows": rows, "peak_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    prepare(args.rows)
    tmp = ROOT / ".bench"
    tmp.mkdir(exist_ok=True)
    results: dict[str, list[dict]] = {m: [] for m in ANCHORS}
    for _ in range(args.repeat):
        for method in ANCHORS:
            out = tmp / f"{method}.csv"
            proc = subprocess.run(
                [sys.executable, __file__, "--child", method, str(out)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )
            results[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {m: sorted(r, key=lambda x: x["seconds"])[len(r) // 2] for m, r in results.items()}
    copy_s = med["copy"]["seconds"]
    print(f"{args.rows:,} rows, median of {args.repeat} run(s); anchors: "
          "reference figures (1M rows, 2-core machine)")
    print(f"{'method':45} {'rows/s':>9} {'xCOPY':>6} {'RSS MiB':>8} | "
          f"{'anchor rows/s':>13} {'xCOPY':>6} {'RSS':>5}")
    for method, (label, a_rate, a_ratio, a_rss) in ANCHORS.items():
        r = med[method]
        rate = args.rows / r["seconds"]
        name = "this package (service path)" if method == "service" else label
        print(f"{name:45} {rate:9,.0f} {r['seconds'] / copy_s:6.1f} {r['peak_mib']:8.0f} | "
              f"{a_rate:13,} {a_ratio:6.1f} {a_rss:5}")
    print("(anchor for the service row: " + ANCHORS["service"][0] + ")")


if __name__ == "__main__":
    main()
