"""The contenders ``run.py`` measures side by side: one registry entry each.

A contender is a function ``run(out_dir, rows) -> dict`` that writes the rows
of ``bench_orders`` (already ``rows`` long) somewhere under ``out_dir`` and
returns at least ``seconds`` (the work it is timed for, interpreter and Django
start-up excluded), ``rows`` and ``file_bytes`` (the output file). ``run.py``
calls it in a process of its own, with ``TMPDIR`` under ``out_dir``, and adds
peak RSS and peak disk. To add one, decorate its function with
``@contender(...)``; ``run.py``, its table and its charts pick it up.

A contender whose work runs in other processes (``partitioned``: Celery worker
processes) returns its own ``peak_rss_mib``: the largest of those processes.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import csv_report
from bench_django import (
    COLUMNS,
    DB_NAME,
    bench_order_model,
    register_cursor_generator,
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
    group: str  # baseline, report, storage, format, compressor or library
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


# One report in parts (partitioned.py's generator: key ranges of bench_orders, rows path) on a
# real Celery worker: one worker of 2 processes, started and stopped by each run (not timed).
PARTS = 4
WORKER_PROCESSES = 2


@contender(
    "partitioned", f"report, {PARTS} parts, {WORKER_PROCESSES}-process worker, csv", "report"
)
def run_partitioned(out_dir: Path, rows: int) -> dict:
    # partitioned.py sets Django up when imported: on this run's table, queues and media.
    prefix = os.environ.get("ASYNC_REPORTS_TEST_QUEUE_PREFIX", "bench")
    os.environ["ASYNC_REPORTS_BENCH_PARTITIONS_DB"] = DB_NAME
    os.environ["ASYNC_REPORTS_BENCH_PARTITIONS_PREFIX"] = f"{prefix}_run_partitions"
    os.environ["ASYNC_REPORTS_TEST_MEDIA_ROOT"] = str(out_dir / "media")
    import partitioned
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from django_async_reports.models import Report

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    (partitioned.ROOT / ".bench").mkdir(exist_ok=True)  # the worker's log
    worker = partitioned.start_worker(WORKER_PROCESSES)
    try:
        partitioned.wait_ready(f"{partitioned.PREFIX}-{WORKER_PROCESSES}")
        seconds, checksum = partitioned.timed_report(user, PARTS)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    report = Report.objects.filter(
        user=user, report_type=partitioned.BenchOrdersByKeyRange.report_type
    )
    result_data = report.latest("created_at").result_data
    # The worker's processes have ended and been waited for: RUSAGE_CHILDREN holds the largest.
    peak_kib = max(
        resource.getrusage(who).ru_maxrss
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return {
        "seconds": seconds,
        "rows": result_data["row_count"],
        "file_bytes": result_data["file_size"],
        "checksum": checksum,
        "peak_rss_mib": peak_kib / 1024,
    }


# -- to S3 (moto's server on loopback, as s3_streaming.py runs it), rows_path's report ------------
def _s3_run(streaming: bool) -> Run:
    def run(out_dir: Path, rows: int) -> dict:
        from s3_streaming import s3_server_outside, s3_settings_env

        with s3_server_outside(out_dir) as endpoint:
            from tests.s3_server import create_private_bucket

            bucket = create_private_bucket(endpoint)
            part_size = 8 * 1024 * 1024  # the S3_PART_SIZE default
            os.environ.update(
                s3_settings_env(endpoint, bucket, streaming=streaming, part_size=part_size)
            )
            setup_django(out_dir)
            return run_report(register_cursor_generator())

    return run


contender("s3_streaming", "report, rows path, csv to S3, streamed", "storage")(_s3_run(True))
contender("s3_temp_file", "report, rows path, csv to S3, temporary file", "storage")(_s3_run(False))


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
