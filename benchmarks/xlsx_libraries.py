"""Which library writes large XLSX files: openpyxl ``write_only`` or xlsxwriter ``constant_memory``.

Measured here (2 cores, Python 3.12, xlsxwriter 3.3.1, openpyxl 3.1.5 without lxml), the
12-column row below, each method in a fresh process; 200k rows are medians of 3 runs:

    method                                   200k rows/s   1M rows/s   peak RSS    file/1M
    rows only (generating the rows)          534k          -           15 MiB      -
    openpyxl write_only, ws.append           8.1k          8.0k        29 MiB      66.6 MB
    xlsxwriter constant_memory, write_row    15.0k         13.6k       24 MiB      63.7 MB
    django_async_reports XLSXWriter          14.0k         13.1k       39 MiB      65.5 MB

Peak RSS is the same at 200k and 1M rows for every method: all of them stream.

Choice: xlsxwriter. It writes 1.7-1.8x as many rows per second as openpyxl at the same flat
memory, and it has native charts, per-cell formats, freeze panes and autofilter in
constant-memory mode. Our writer costs 5-7 % over a bare ``write_row`` (per-type dispatch,
formula neutralisation, width sampling); its higher RSS is Django and the package being
imported, not rows.

Run::

    python benchmarks/xlsx_libraries.py --rows 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    "id",
    "order_date",
    "customer",
    "email",
    "product",
    "status",
    "region",
    "city",
    "quantity",
    "unit_price",
    "total",
    "note",
]
STATUSES = ["pending", "paid", "shipped", "cancelled"]
REGIONS = ["north", "south", "east", "west"]
CITIES = ["Lyon", "Zürich", "Kraków", "Porto", "Oslo", "Sevilla", "Gent"]


def make_rows(count: int) -> Iterator[tuple]:
    """Deterministic rows of the 12-column shape: int, date, six str, int, Decimal x2, str."""
    start = datetime.date(2024, 1, 1)
    for i in range(1, count + 1):
        quantity = 1 + i % 9
        price = Decimal(500 + i % 1000) / 100
        yield (
            i,
            start + datetime.timedelta(days=i % 730),
            f"Customer {i % 50000}",
            f"customer{i % 50000}@example.com",
            f"Product {i % 2000}",
            STATUSES[i % 4],
            REGIONS[i % 4],
            CITIES[i % 7],
            quantity,
            price,
            price * quantity,
            "" if i % 3 else f"Deliver before noon, ref {i:08d}",
        )


# -- one method per child process -------------------------------------------------------------
def run_rows_only(rows: int, path: str) -> None:
    for _row in make_rows(rows):
        pass


def run_openpyxl(rows: int, path: str) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Report")
    sheet.append(COLUMNS)
    for row in make_rows(rows):
        sheet.append(row)
    workbook.save(path)


def run_xlsxwriter(rows: int, path: str) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_date_format": "yyyy-mm-dd",
        },
    )
    sheet = workbook.add_worksheet("Report")
    sheet.write_row(0, 0, COLUMNS)
    for number, row in enumerate(make_rows(rows), start=1):
        sheet.write_row(number, 0, row)
    workbook.close()


def run_package_writer(rows: int, path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from django.conf import settings

    settings.configure(USE_TZ=True, TIME_ZONE="UTC")
    from django_async_reports.writers.xlsx import XLSXWriter

    chunk: list[tuple] = []
    with open(path, "wb") as fileobj:
        writer = XLSXWriter(fileobj)
        writer.write_header(COLUMNS)
        for row in make_rows(rows):
            chunk.append(row)
            if len(chunk) == 500:
                writer.write_rows(chunk)
                chunk = []
        writer.write_rows(chunk)
        writer.write_summary(None, rows)
        writer.close()


METHODS = {
    "rows_only": ("rows only (generating the rows)", run_rows_only),
    "openpyxl": ("openpyxl write_only, ws.append", run_openpyxl),
    "xlsxwriter": ("xlsxwriter constant_memory, write_row", run_xlsxwriter),
    "package": ("django_async_reports XLSXWriter", run_package_writer),
}


def child(method: str, rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out.xlsx")
        started = time.perf_counter()
        METHODS[method][1](rows, path)
        seconds = time.perf_counter() - started
        size = os.path.getsize(path) if os.path.exists(path) else 0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024, "bytes": size}))


def measure(method: str, rows: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, "--rows", str(rows)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; medians shown")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return

    print(f"{args.rows:,} rows x {len(COLUMNS)} columns, {args.repeat} run(s) per method\n")
    print(f"{'method':<48} {'rows/s':>10} {'peak RSS':>10} {'file':>9}")
    results: dict[str, list[dict]] = {method: [] for method in args.methods}
    for _ in range(args.repeat):
        for method in args.methods:
            results[method].append(measure(method, args.rows))
    for method in args.methods:
        runs = results[method]
        seconds = statistics.median(run["seconds"] for run in runs)
        peak = statistics.median(run["peak_mib"] for run in runs)
        size = runs[-1]["bytes"] / 1e6
        rate = args.rows / seconds if seconds else float("inf")
        file_size = f"{size:.1f} MB" if size else "-"
        print(f"{METHODS[method][0]:<48} {rate:>10,.0f} {peak:>7.0f} MiB {file_size:>9}")


if __name__ == "__main__":
    main()
