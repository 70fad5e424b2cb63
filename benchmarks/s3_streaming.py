"""A CSV report to S3 through a temporary file, and streamed as a multipart upload.

One run, side by side, against moto's S3 server on loopback: the whole service
path (claim, generate, post-process) of an N-row CSV report, plain and gzip,
with ``S3_STREAMING`` off (the writer fills a temporary file, the storage
uploads it; post-processing reads the object back to gzip and measure it) and
on (parts of ``S3_PART_SIZE`` uploaded as they are written, gzip and sha256 in
the stream). Each run is a fresh process: seconds, peak RSS (``ru_maxrss``),
and the peak disk the report's temporary files held, sampled every 20 ms from
the process's open files under a ``TMPDIR`` of its own. moto keeps objects in
memory and is slower than S3; the local disk and memory figures are the point.

``run.py``'s ``s3_streaming`` and ``s3_temp_file`` contenders reuse its server
(:func:`s3_server_outside`) and settings (:func:`s3_settings_env`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "async_reports_bench_s3"
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
STATUSES = ["pending", "paid", "shipped", "cancelled"]
REGIONS = ["north", "south", "east", "west"]


class DiskSampler(threading.Thread):
    """Peak bytes on disk of this process's open files under ``folder`` (deleted ones too)."""

    def __init__(self, folder: str) -> None:
        super().__init__(daemon=True)
        self.folder = os.path.realpath(folder)
        self.peak = 0
        self.stopped = threading.Event()

    def sample(self) -> None:
        total = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith(self.folder + "/"):
                    total += os.fstat(int(fd)).st_blocks * 512
            except OSError:
                continue
        self.peak = max(self.peak, total)

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.sample()


def _tests_importable() -> None:
    """``tests.s3_server`` and ``tests.settings`` live at the repository's root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def s3_settings_env(endpoint: str, bucket: str, *, streaming: bool, part_size: int) -> dict:
    """The environment that points the test settings' report storage at ``bucket``."""
    _tests_importable()
    from tests.s3_server import s3_storage_settings

    overrides = {"STORAGE": "s3", "S3_STREAMING": streaming, "S3_PART_SIZE": part_size}
    return {
        "ASYNC_REPORTS_TEST_S3_STORAGE": json.dumps(s3_storage_settings(endpoint, bucket)),
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(overrides),
    }


@contextmanager
def s3_server_outside(folder: Path) -> Iterator[str]:
    """moto's server (its endpoint), with its log and temporary files outside ``folder``.

    ``run.py`` counts the files under a contender's folder as the report's disk:
    the server's are not the report's.
    """
    _tests_importable()
    from tests.s3_server import s3_server

    elsewhere = str(folder.parent)
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    with ExitStack() as stack:
        os.environ["TMPDIR"] = tempfile.tempdir = elsewhere
        try:
            endpoint = stack.enter_context(s3_server())
        finally:
            if saved[0] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[0]
            tempfile.tempdir = saved[1]
        yield endpoint


def ensure_database() -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            c.execute(f"CREATE DATABASE {DB_NAME}")


def child(rows: int, compress: bool) -> None:
    """One report through the service layer; settings come from the environment (main)."""
    sys.path.insert(0, str(ROOT))
    import datetime
    from decimal import Decimal

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from django_async_reports import ReportGenerator, register, services
    from django_async_reports.models import Report

    call_command("migrate", verbosity=0)

    @register
    class BenchOrders(ReportGenerator):
        report_type = "bench_orders_s3"
        columns = COLUMNS
        chunk_size = 2000

        def count(self, params):
            return rows

        def rows(self, params):
            start = datetime.datetime(2024, 1, 1)
            for g in range(1, rows + 1):
                quantity = 1 + g % 9
                price = Decimal(5 * 10 + g % 1000) / 10
                yield (
                    g,
                    start + datetime.timedelta(minutes=g % 525600),
                    f"Customer {g % 50000}",
                    f"Product {g % 2000}",
                    quantity,
                    price,
                    quantity * price,
                    STATUSES[g % 4],
                    REGIONS[g % 4],
                )

    sampler = DiskSampler(tempfile.gettempdir())
    sampler.start()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    report = Report.objects.create(
        user=user, report_type="bench_orders_s3", title="bench", format="csv", compress=compress
    )
    started = time.perf_counter()
    services.generate(services.claim_report(report.pk))
    generated = time.perf_counter()
    services.post_process(report.pk)
    finished = time.perf_counter()
    sampler.stopped.set()
    sampler.join()
    sampler.sample()
    report.refresh_from_db()
    assert report.status == "completed", (report.status, report.error_message)
    print(
        json.dumps(
            {
                "seconds": finished - started,
                "post_process_seconds": finished - generated,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_disk_mib": sampler.peak / 2**20,
                "file_mib": report.result_data["file_size"] / 2**20,
                "checksum": report.result_data["checksum"],
                "key": report.result_file.name,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--part-size", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--child", nargs=2, metavar=("ROWS", "COMPRESS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1] == "1")
        return
    sys.path.insert(0, str(ROOT))
    from tests.s3_server import create_private_bucket, s3_client, s3_server

    ensure_database()
    results = {}
    with s3_server() as endpoint:
        bucket = create_private_bucket(endpoint)
        for compress in (False, True):
            for streaming in (False, True):
                with tempfile.TemporaryDirectory(prefix="bench-tmp-") as tmpdir:
                    env = {
                        **os.environ,
                        "DJANGO_SETTINGS_MODULE": "tests.settings",
                        "ASYNC_REPORTS_TEST_DB_NAME": DB_NAME,
                        **s3_settings_env(
                            endpoint, bucket, streaming=streaming, part_size=args.part_size
                        ),
                        "TMPDIR": tmpdir,
                    }
                    proc = subprocess.run(
                        [sys.executable, __file__, "--child", str(args.rows), str(int(compress))],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    if proc.returncode:
                        sys.exit(proc.stderr[-4000:])
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                results[compress, streaming] = result
                # moto holds objects in memory: drop this one before the next run.
                s3_client(endpoint).delete_object(Bucket=bucket, Key=result["key"])
    print(
        f"{args.rows:,}-row CSV report to S3 (moto on loopback), parts of "
        f"{args.part_size / 2**20:g} MiB; whole service path, each run a fresh process"
    )
    print(
        f"{'':5} {'path':10} {'seconds':>8} {'post-proc s':>11} {'peak RSS MiB':>12} "
        f"{'peak disk MiB':>13} {'file MiB':>8}"
    )
    for compress in (False, True):
        for streaming in (False, True):
            r = results[compress, streaming]
            print(
                f"{'gzip' if compress else 'plain':5} "
                f"{'stream' if streaming else 'temp file':10} "
                f"{r['seconds']:8.1f} {r['post_process_seconds']:11.2f} "
                f"{r['peak_rss_mib']:12.0f} {r['peak_disk_mib']:13.1f} {r['file_mib']:8.1f}"
            )
        same = results[compress, False]["checksum"] == results[compress, True]["checksum"]
        print(f"{'':5} same bytes both ways: {same}")


if __name__ == "__main__":
    main()
