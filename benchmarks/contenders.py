"""The contenders ``run.py`` measures side by side: one registry entry each.

A contender is a function ``run(out_dir, rows) -> dict`` that writes the rows
of ``bench_orders`` (already ``rows`` long) somewhere under ``out_dir`` and
returns at least ``seconds`` (the work it is timed for, interpreter and Django
start-up excluded), ``rows`` and ``file_bytes`` (the output file). ``run.py``
calls it in a process of its own, with ``TMPDIR`` under ``out_dir``, and adds
peak RSS and peak disk. To add one, decorate its function with
``@contender(...)``; ``run.py``, its table and its charts pick it up.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import csv_report
from bench_django import (
    COLUMNS,
    bench_order_model,
    register_queryset_generator,
    run_report,
    setup_django,
)

Run = Callable[[Path, int], dict]


@dataclass(frozen=True)
class Contender:
    """One way of writing the rows, and how ``run.py`` shows it."""

    name: str
    label: str
    group: str  # baseline, report, format, compressor or library
    run: Run
    #: Above this many rows the contender is not run (say why in ``skip_reason``).
    max_rows: int | None = None
    skip_reason: str = ""


CONTENDERS: dict[str, Contender] = {}


def contender(
    name: str, label: str, group: str, *, max_rows: int | None = None, skip_reason: str = ""
) -> Callable[[Run], Run]:
    """Register the decorated ``run(out_dir, rows)`` under ``name``, in the order declared."""

    def decorate(run: Run) -> Run:
        if name in CONTENDERS:
            raise ValueError(f"contender {name!r} is already registered")
        CONTENDERS[name] = Contender(name, label, group, run, max_rows, skip_reason)
        return run

    return decorate


def _timed_file(write: Callable[[Path], object], out: Path, rows: int) -> dict:
    started = time.perf_counter()
    write(out)
    return {
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "file_bytes": out.stat().st_size,
    }


# -- baselines: no report machinery --------------------------------------------------------------
@contender("copy", "bare COPY ... TO STDOUT (psycopg 3)", "baseline")
def run_copy(out_dir: Path, rows: int) -> dict:
    return _timed_file(csv_report.run_copy, out_dir / "copy.csv", rows)


@contender("loop", "bare server-side cursor + csv.writer", "baseline")
def run_loop(out_dir: Path, rows: int) -> dict:
    return _timed_file(csv_report.run_cursor_csv, out_dir / "loop.csv", rows)


# -- whole reports through the service layer (claim, generate, post-process) ----------------------
@contender("rows_path", "report, rows path (cursor generator), csv", "report")
def run_rows_path(out_dir: Path, rows: int) -> dict:
    return csv_report.service_report(out_dir)


@contender("queryset_rows", "report, QuerySet generator, rows path, csv", "report")
def run_queryset_rows(out_dir: Path, rows: int) -> dict:
    setup_django(out_dir)
    return run_report(register_queryset_generator(fast=False))


@contender("fast_path", "report, QuerySet generator, COPY fast path, csv", "report")
def run_fast_path(out_dir: Path, rows: int) -> dict:
    setup_django(out_dir)
    return run_report(register_queryset_generator(fast=True))


# -- the other formats, same generator as rows_path (which is the csv one) ------------------------
def _format_run(fmt: str, compress: bool) -> Run:
    def run(out_dir: Path, rows: int) -> dict:
        return csv_report.service_report(out_dir, fmt, compress)

    return run


for _name, _fmt, _compress in [
    ("csv.gz", "csv", True),
    ("xlsx", "xlsx", False),
    ("ndjson", "ndjson", False),
    ("json.gz", "json", True),
]:
    contender(f"format_{_name}", f"report, rows path, {_name}", "format")(
        _format_run(_fmt, _compress)
    )


# -- compressors: the post-processing step alone, on the CSV COPY writes -------------------------
def _gzip_levels() -> list[int | None]:
    """The ``GZIP_LEVEL`` values to try, when the settings offer the knob; else files.py's own."""
    from django_async_reports.conf import DEFAULTS

    if "GZIP_LEVEL" not in DEFAULTS:
        return [None]
    return [None, 1, 6]  # the default pick, the fastest and zlib's usual level


def _compressor_in_use() -> str:
    """Which compressor ``services/files.py`` uses now, read from the package at run time."""
    from django_async_reports.services import files

    try:
        from django_async_reports.services.gzipping import gzip_backend  # type: ignore
    except ImportError:
        return f"stdlib gzip, level {files.GZIP_LEVEL}"
    backend = gzip_backend()
    return f"{backend.name}, level {backend.level}"


def _compress_run(level: int | None) -> Run:
    def run(out_dir: Path, rows: int) -> dict:
        setup_django(out_dir, migrate=False)
        from django.conf import settings
        from django.test import override_settings

        from django_async_reports.services import files
        from django_async_reports.storage import report_storage

        source = Path(report_storage.path("bench.csv"))
        source.parent.mkdir(parents=True, exist_ok=True)
        csv_report.run_copy(source)  # the input, not timed
        overrides = {}
        if level is not None:
            overrides = {
                "ASYNC_REPORTS": {**getattr(settings, "ASYNC_REPORTS", {}), "GZIP_LEVEL": level}
            }
        with override_settings(**overrides):
            used = _compressor_in_use()
            started = time.perf_counter()
            stored = files.compress(report_storage, "bench.csv")
            seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "rows": rows,
            "file_bytes": stored.size,
            "input_bytes": stored.uncompressed_size,
            "compressor": used,
        }

    return run


for _level in _gzip_levels():
    _suffix = "default" if _level is None else f"GZIP_LEVEL={_level}"
    contender(f"gzip_{_suffix}", f"compress the csv ({_suffix})", "compressor")(
        _compress_run(_level)
    )


# -- django-import-export 4.x, exported as its documentation shows ------------------------------
IMPORT_EXPORT_IN_MEMORY = (
    "django-import-export builds the whole file in memory (a tablib Dataset); "
    "run it above this size with --max-rows-in-memory"
)


def _import_export_run(fmt: str) -> Run:
    def run(out_dir: Path, rows: int) -> dict:
        setup_django(out_dir, migrate=False)
        from import_export import fields, resources

        model = bench_order_model()

        class BenchOrderResource(resources.ModelResource):
            # The table's column is a timestamp without time zone: naive under
            # USE_TZ, which the default DateTimeWidget refuses; printed as text.
            created_at = fields.Field(attribute="created_at", column_name="created_at")

            class Meta:
                model = bench_order_model()
                fields = COLUMNS
                export_order = COLUMNS

        out = out_dir / f"import_export.{fmt}"
        started = time.perf_counter()
        dataset = BenchOrderResource().export(queryset=model.objects.order_by("id"))
        data = getattr(dataset, fmt)
        if isinstance(data, str):
            out.write_text(data, encoding="utf-8")
        else:
            out.write_bytes(data)
        return {
            "seconds": time.perf_counter() - started,
            "rows": len(dataset),
            "file_bytes": out.stat().st_size,
        }

    return run


if importlib.util.find_spec("import_export") is not None:
    for _fmt in ("csv", "xlsx"):
        contender(
            f"import_export_{_fmt}",
            f"django-import-export, {_fmt}",
            "library",
            max_rows=300_000,
            skip_reason=IMPORT_EXPORT_IN_MEMORY,
        )(_import_export_run(_fmt))
