"""Throughput and peak memory of a CSV report through the service layer, next to its baselines.

Three methods on the same deterministic ``bench_orders`` table (built here with
``generate_series`` in a database of its own), each in its own process so its
peak RSS (``ru_maxrss``) is its own: PostgreSQL ``COPY ... TO STDOUT`` (the
floor), a bare server-side cursor + ``csv.writer`` (what Python costs), and a
whole report through the service layer (claim, generate, post-process). The
ratios to ``COPY`` measured in the same run are the figures to compare.

    .venv/bin/python benchmarks/csv_report.py --rows 1000000
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

from bench_django import (
    COLUMNS,
    DB_NAME,
    ROOT,
    SELECT,
    dsn,
    register_cursor_generator,
    run_report,
    setup_django,
)

__all__ = ["COLUMNS", "DB_NAME", "ROOT", "SELECT", "dsn", "prepare", "run_copy"]

METHODS = {
    "copy": "COPY ... TO STDOUT via psycopg 3",
    "cursor_csv": "server-side cursor + csv.writer",
    "service": "this package (service path)",
}


def prepare(rows: int) -> None:
    """Create the benchmark database and its ``bench_orders`` table of ``rows`` rows.

    The rows are a pure function of their id, so every run of a size reads the
    same table; a table already of that size is kept.
    """
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
    """Bare ``COPY (SELECT ...) TO STDOUT WITH CSV HEADER`` into ``out``; rows are not counted."""
    import psycopg

    with (
        psycopg.connect(dsn()) as c,
        c.cursor() as cur,
        open(out, "wb") as fh,
        cur.copy(f"COPY ({SELECT}) TO STDOUT WITH CSV HEADER") as copy,
    ):
        for block in copy:
            fh.write(block)
    return -1


def run_cursor_csv(out: Path) -> int:
    """A bare server-side cursor + ``csv.writer`` into ``out``; the rows written."""
    import csv

    import psycopg

    n = 0
    with (
        psycopg.connect(dsn()) as c,
        c.cursor(name="bench") as cur,
        open(out, "w", newline="", encoding="utf-8") as fh,
    ):
        cur.itersize = 2000
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        cur.execute(SELECT)
        for row in cur:
            writer.writerow(row)
            n += 1
    return n


def service_report(folder: Path, fmt: str = "csv", compress: bool = False) -> dict:
    """One report of ``bench_orders`` (server-side cursor generator) through the service layer.

    Returns :func:`bench_django.run_report`'s figures; Django start-up and
    ``migrate`` are not timed.
    """
    setup_django(folder)
    return run_report(register_cursor_generator(), fmt, compress)


def child(method: str, out: str) -> None:
    started = time.perf_counter()
    if method == "service":
        result = service_report(Path(out).parent)
        seconds, rows = result["seconds"], result["rows"]
    else:
        rows = {"copy": run_copy, "cursor_csv": run_cursor_csv}[method](Path(out))
        seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": method, "seconds": seconds, "rows": rows, "peak_mib": peak_mib}))


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
    results: dict[str, list[dict]] = {m: [] for m in METHODS}
    for _ in range(args.repeat):
        for method in METHODS:
            out = tmp / f"{method}.csv"
            proc = subprocess.run(
                [sys.executable, __file__, "--child", method, str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            results[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {m: sorted(r, key=lambda x: x["seconds"])[len(r) // 2] for m, r in results.items()}
    copy_s = med["copy"]["seconds"]
    print(f"{args.rows:,} rows, median of {args.repeat} run(s), measured in this run")
    print(f"{'method':36} {'seconds':>8} {'rows/s':>9} {'x COPY':>7} {'RSS MiB':>8}")
    for method, label in METHODS.items():
        r = med[method]
        print(
            f"{label:36} {r['seconds']:8.2f} {args.rows / r['seconds']:9,.0f} "
            f"{r['seconds'] / copy_s:7.2f} {r['peak_mib']:8.0f}"
        )


if __name__ == "__main__":
    main()
