"""Django inside a benchmark process: settings, the ``bench_orders`` model, generators, one report.

Shared by the scripts that run reports through the service layer
(``csv_report.py``, ``copy_fast_path.py``, ``report_formats.py``, ``run.py``,
``profile_report.py``). Each benchmark process runs one method, so everything
here is set up once per process, against the database ``csv_report.prepare``
fills.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The database of the deterministic table; another name keeps two runs of different sizes apart.
DB_NAME = os.environ.get("ASYNC_REPORTS_BENCH_DB", "async_reports_bench")
COLUMNS = [
    "id",
    "created_at",
    "customer",
    "product",
    "quantity",
    "unit_price",
    "total",
    "status",
    "region",
]
SELECT = f"SELECT {', '.join(COLUMNS)} FROM bench_orders ORDER BY id"
CHUNK_ROWS = 2000


def dsn() -> str:
    """libpq connection string of the benchmark database."""
    return f"host=127.0.0.1 user=postgres dbname={DB_NAME}"


def setup_django(folder: Path, *, migrate: bool = True) -> None:
    """Configure the test settings on the benchmark database, media under ``folder``."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["ASYNC_REPORTS_TEST_DB_NAME"] = DB_NAME
    os.environ["ASYNC_REPORTS_TEST_MEDIA_ROOT"] = str(folder / "media")
    # Each report publishes its next step, as a worker does: on queues of their own.
    os.environ.setdefault("ASYNC_REPORTS_TEST_QUEUE_PREFIX", "bench")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


@functools.cache
def bench_order_model() -> Any:
    """An unmanaged model over ``bench_orders`` (the table is made by SQL, never migrated)."""
    from django.db import models

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

    return BenchOrder


@functools.cache
def register_cursor_generator() -> str:
    """Register a generator reading ``SELECT`` through a server-side cursor; its report type."""
    from django.db import connection, transaction

    from django_async_reports import ReportGenerator, register

    @register
    class BenchOrders(ReportGenerator):
        report_type = "bench_orders"
        columns = COLUMNS
        chunk_size = CHUNK_ROWS

        def count(self, params):
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM bench_orders")
                return cur.fetchone()[0]

        def rows(self, params):
            # A transaction keeps PostgreSQL from materialising a WITH HOLD cursor.
            with transaction.atomic(), connection.chunked_cursor() as cur:
                cur.execute(SELECT)
                while batch := cur.fetchmany(CHUNK_ROWS):
                    yield from batch

    return BenchOrders.report_type


@functools.cache
def register_queryset_generator(*, fast: bool) -> str:
    """Register a generator whose ``rows()`` returns ``values_list`` (COPY fast path on or off)."""
    from django_async_reports import ReportGenerator, register

    model = bench_order_model()

    class BenchOrdersQuerySet(ReportGenerator):
        report_type = "bench_orders_queryset_fast" if fast else "bench_orders_queryset"
        columns = COLUMNS
        chunk_size = CHUNK_ROWS
        copy_fast_path = fast

        def count(self, params):
            return model.objects.count()

        def rows(self, params):
            return model.objects.order_by("id").values_list(*COLUMNS)

    register(BenchOrdersQuerySet)
    return BenchOrdersQuerySet.report_type


def run_report(report_type: str, fmt: str = "csv", compress: bool = False) -> dict:
    """One report through the service layer, as a worker runs it: claim, generate, post-process.

    Returns ``seconds`` (claim to completed), ``generate_seconds``,
    ``post_process_seconds``, ``rows``, ``file_bytes``, ``file_mib``, ``checksum``
    and the stored file's local ``path`` (None on S3). Django start-up and
    ``migrate`` are not timed.
    """
    from django.contrib.auth import get_user_model

    from django_async_reports import services
    from django_async_reports.models import Report

    user, _ = get_user_model().objects.get_or_create(username="bench")
    report = Report.objects.create(
        user=user, report_type=report_type, title="bench", format=fmt, compress=compress
    )
    started = time.perf_counter()
    services.generate(services.claim_report(report.pk))
    generated = time.perf_counter()
    services.post_process(report.pk)
    finished = time.perf_counter()
    report.refresh_from_db()
    assert report.status == "completed", (report.status, report.error_message)
    size = report.result_data["file_size"]
    return {
        "seconds": finished - started,
        "generate_seconds": generated - started,
        "post_process_seconds": finished - generated,
        "rows": report.result_data["row_count"],
        "file_bytes": size,
        "file_mib": size / 2**20,
        "checksum": report.result_data["checksum"],
        "path": _local_path(report.result_file),
    }


def _local_path(field: Any) -> str | None:
    """The stored file's local path; None on a storage without one (S3)."""
    try:
        return field.path
    except NotImplementedError:
        return None
