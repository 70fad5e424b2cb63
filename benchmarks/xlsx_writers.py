"""Faster XLSX writers than this package's (xlsxwriter ``constant_memory``), on typed rows.

Candidates: rustpy-xlsxwriter (Rust, records as dicts, constant memory),
pyfastexcel (Go excelize through ctypes; the whole sheet held in Python first)
and PyExcelerate (pure Python, the whole workbook held in memory). Each runs in
a fresh process with the same runner as ``xlsx_libraries.py`` (which compared
openpyxl and xlsxwriter), on the same 10-column rows: int, date, datetime, three
texts, int, Decimal, Decimal, bool, with None in some cells. Methods alternate
within each repeat; medians are shown. Peak RSS at two row counts tells flat
memory from memory that grows with the rows.

Measured here (2 cores, Python 3.11), 200k rows, median of 3; RSS at 200k / 50k:

    method                                             rows/s  x package  peak RSS
    rows only                                         277,928    29.5     14 / 14 MiB
    this package's XLSXWriter (xlsxwriter 3.3.1)        9,417     1.0     40 / 41 MiB
    rustpy-xlsxwriter 0.8, dicts as they come          70,694     7.5     22 / 22 MiB
    rustpy-xlsxwriter, as this package would feed it   65,658     7.0     42 / 43 MiB
    pyfastexcel 0.1.9 (excelize)                       16,347     1.7   1080 / 359 MiB
    PyExcelerate 0.13.0                                11,129     1.2    230 / 79 MiB

Decision: none adopted. rustpy-xlsxwriter is 7x faster in flat memory but
cannot write the same cells (per-column formats only, time and timedelta as
text, integers as floats, a table-shaped sheet pulled at save() where the
Summary sheet is free-form with cross-sheet charts); the other two hold the
workbook in memory.

The "rustpy-xlsxwriter, as this package would feed it" row is the fair
comparison for a backend: the values prepared as ``writers/xlsx.py`` prepares
them (formula neutralisation, Decimal to float, text limits) and handed over as
the dicts the library takes. See docs/formats.md ("XLSX speed") for the figures
and the decision.

Run::

    python benchmarks/xlsx_writers.py --rows 200000 --repeat 3
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
    "id", "order_date", "created_at", "customer", "status", "city",
    "quantity", "unit_price", "total", "paid",
]  # fmt: skip
STATUSES = ["pending", "paid", "shipped", "cancelled"]
CITIES = ["Lyon", "Zürich", "Kraków", "Porto", "=Oslo", "Sevilla", "Gent"]


def make_rows(count: int) -> Iterator[tuple]:
    """Deterministic typed rows; one city a formula trigger, one in 5 of two columns None."""
    day = datetime.date(2024, 1, 1)
    moment = datetime.datetime(2024, 1, 1, 8, 0, 0)
    for i in range(1, count + 1):
        quantity = 1 + i % 9
        price = Decimal(500 + i % 1000) / 100
        yield (
            i,
            day + datetime.timedelta(days=i % 730),
            moment + datetime.timedelta(minutes=i % 525_600),
            f"Customer {i % 50_000}",
            STATUSES[i % 4],
            None if i % 5 == 0 else CITIES[i % 7],
            quantity,
            price,
            price * quantity,
            None if i % 5 == 1 else bool(i % 2),
        )


def run_rows_only(rows: int, path: str) -> None:
    for _row in make_rows(rows):
        pass


def run_package_writer(rows: int, path: str) -> None:
    """This package's XLSXWriter, fed 500-row chunks as the run loop does."""
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


def _rustpy_sheet(path: str, records: Iterator[dict]) -> None:
    from rustpy_xlsxwriter import FastExcel, Format

    date, moment = (
        Format().set_num_format("yyyy-mm-dd"),
        Format().set_num_format("yyyy-mm-dd hh:mm:ss"),
    )
    formats = [None, date, moment, *[None] * (len(COLUMNS) - 3)]
    FastExcel(path).format(bold_headers=True).freeze(row=1).sheet(
        "Report",
        records,
        autofilter=True,
        column_widths=[12.0] * len(COLUMNS),
        column_formats=formats,
    ).save()


def run_rustpy_bare(rows: int, path: str) -> None:
    """rustpy-xlsxwriter given the rows as dicts, nothing else done in Python."""
    _rustpy_sheet(path, (dict(zip(COLUMNS, row, strict=True)) for row in make_rows(rows)))


def run_rustpy_prepared(rows: int, path: str) -> None:
    """rustpy-xlsxwriter with the values prepared as writers/xlsx.py prepares them."""
    sys.path.insert(0, str(ROOT))
    from django_async_reports.writers.csv import FORMULA_TRIGGERS, neutralize_text

    def prepared(row: tuple) -> dict:
        out = {}
        for name, value in zip(COLUMNS, row, strict=True):
            kind = type(value)
            if kind is str and value.startswith(FORMULA_TRIGGERS):
                value = neutralize_text(value)
            elif kind is Decimal:
                value = float(value)
            out[name] = value
        return out

    _rustpy_sheet(path, (prepared(row) for row in make_rows(rows)))


def run_pyfastexcel(rows: int, path: str) -> None:
    from pyfastexcel import StreamWriter

    writer = StreamWriter()
    writer.row_append_list(COLUMNS, create_row=True)
    for row in make_rows(rows):
        # Its validator takes str, int, float, bool and None only.
        values = [
            float(v) if type(v) is Decimal else v.isoformat() if hasattr(v, "isoformat") else v
            for v in row
        ]
        writer.row_append_list(values, create_row=True)
    writer.save(path)


def run_pyexcelerate(rows: int, path: str) -> None:
    from pyexcelerate import Workbook

    workbook = Workbook()
    workbook.new_sheet("Report", data=[COLUMNS, *make_rows(rows)])
    workbook.save(path)


METHODS = {
    "rows_only": ("rows only (generating the rows)", run_rows_only),
    "package": ("this package's XLSXWriter (xlsxwriter)", run_package_writer),
    "rustpy": ("rustpy-xlsxwriter 0.8, dicts as they come", run_rustpy_bare),
    "rustpy_prepared": ("rustpy-xlsxwriter, as this package would feed it", run_rustpy_prepared),
    "pyfastexcel": ("pyfastexcel (excelize), whole sheet in memory", run_pyfastexcel),
    "pyexcelerate": ("PyExcelerate, whole workbook in memory", run_pyexcelerate),
}


def child(method: str, rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out.xlsx")
        started = time.perf_counter()
        try:
            METHODS[method][1](rows, path)
        except ImportError as exc:
            print(json.dumps({"missing": str(exc)}))
            return
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
    parser.add_argument(
        "--small-rows", type=int, default=50_000, help="second size, for RSS growth"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; medians shown")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return

    print(
        f"{args.rows:,} rows x {len(COLUMNS)} typed columns, median of {args.repeat} run(s), "
        f"methods alternating; peak RSS also at {args.small_rows:,} rows\n"
    )
    results: dict[str, list[dict]] = {method: [] for method in args.methods}
    small: dict[str, dict] = {}
    for _ in range(args.repeat):
        for method in args.methods:
            results[method].append(measure(method, args.rows))
    for method in args.methods:
        small[method] = measure(method, args.small_rows)
    package = (
        statistics.median(r["seconds"] for r in results["package"])
        if "package" in results
        else None
    )
    print(f"{'method':<50} {'rows/s':>9} {'x package':>9} {'RSS':>8} {'RSS small':>10} {'file':>8}")
    for method in args.methods:
        runs = results[method]
        if "missing" in runs[0]:
            print(f"{METHODS[method][0]:<50} not installed ({runs[0]['missing']})")
            continue
        seconds = statistics.median(run["seconds"] for run in runs)
        peak = statistics.median(run["peak_mib"] for run in runs)
        speedup = f"{package / seconds:8.2f}x" if package else "-"
        print(
            f"{METHODS[method][0]:<50} {args.rows / seconds:9,.0f} {speedup:>9} "
            f"{peak:5.0f} MiB {small[method]['peak_mib']:6.0f} MiB "
            f"{runs[-1]['bytes'] / 1e6:6.1f} MB"
        )
    print(
        "\nx package: time of this package's writer / time of the method (higher is faster). "
        "'rows only' is the cost of making the rows, inside every other figure."
    )


if __name__ == "__main__":
    main()
