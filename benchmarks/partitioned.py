"""One partitioned report on a 1-process worker against a 2-process worker (real Celery).

The report reads the deterministic ``bench_orders`` table of ``csv_report.py``
(same table, in a database of its own) on the rows path: each part yields its key range through a
server-side cursor and ``csv.writer``. The script starts a real Celery worker
(``celery worker -c 1``, then ``-c 2``) on queues of its own (prefix
``bench_partitions``), requests the report through the service layer, and
times it from the request to ``completed`` (parts, assembly, post-processing).
The one-task run on the 1-process worker is the reference; all three files
must have the same checksum.

Run: ``.venv/bin/python benchmarks/partitioned.py --rows 2000000 --parts 4 --repeat 3``
(the best of three runs of each, on a shared machine).
This module is also the worker's Celery app (``-A partitioned``): importing
it registers the benchmark's generator in the worker too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_django  # noqa: E402
import csv_report  # noqa: E402  (the sibling script: table and database)

ROOT = csv_report.ROOT
# Queues and a database of their own: another benchmark resizing bench_orders meanwhile would
# change the rows. run.py's ``partitioned`` contender points both at its own run's.
PREFIX = os.environ.get("ASYNC_REPORTS_BENCH_PARTITIONS_PREFIX", "bench_partitions")
csv_report.DB_NAME = bench_django.DB_NAME = os.environ.get(
    "ASYNC_REPORTS_BENCH_PARTITIONS_DB", "async_reports_bench_partitions"
)  # both: csv_report.prepare creates the database, bench_django.dsn() connects to it
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ["ASYNC_REPORTS_TEST_DB_NAME"] = csv_report.DB_NAME
os.environ["ASYNC_REPORTS_TEST_QUEUE_PREFIX"] = PREFIX
os.environ.setdefault("ASYNC_REPORTS_TEST_MEDIA_ROOT", str(ROOT / ".bench" / "partitions"))

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from django_async_reports import ReportGenerator, register  # noqa: E402
from tests.celery_app import app  # noqa: E402  (the worker's app: -A partitioned)

SELECT = f"SELECT {', '.join(csv_report.COLUMNS)} FROM bench_orders"


@register
class BenchOrdersByKeyRange(ReportGenerator):
    """``bench_orders`` in ``parts`` id ranges (0: one task), rows through a server-side cursor."""

    report_type = "bench_orders_partitioned"
    columns = csv_report.COLUMNS
    chunk_size = 2000

    def _bounds(self) -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT min(id), max(id) FROM bench_orders")
            low, high = cursor.fetchone()
        return int(low), int(high) + 1

    def count(self, params):
        low, high = self._bounds()
        return high - low

    def partitions(self, params):
        parts = int(params.get("parts", 0))
        if parts < 2:
            return None
        low, high = self._bounds()
        edges = [low + (high - low) * i // parts for i in range(parts + 1)]
        return [[edges[i], edges[i + 1]] for i in range(parts)]

    def rows(self, params, partition=None):
        low, high = partition if partition is not None else self._bounds()
        with connection.chunked_cursor() as cursor:
            cursor.execute(f"{SELECT} WHERE id >= %s AND id < %s ORDER BY id", [low, high])
            while batch := cursor.fetchmany(self.chunk_size):
                yield from batch


def start_worker(concurrency: int) -> subprocess.Popen:
    from django_async_reports.conf import report_settings

    queues = f"{report_settings.QUEUE},{report_settings.HIGH_PRIORITY_QUEUE}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    log = open(ROOT / ".bench" / f"partitions-worker-{concurrency}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "partitioned", "worker", "-Q", queues,
         "-c", str(concurrency), "-n", f"{PREFIX}-{concurrency}@%h", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_ready(name: str, timeout: float = 60) -> None:
    """Wait until the worker ``name`` answers a ping (other workers on the broker do not count)."""
    from celery.utils.nodenames import host_format

    node = host_format(f"{name}@%h")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(destination=[node], timeout=1.0):
            return
    raise SystemExit(f"worker {name} did not start; see .bench/partitions-worker-*.log")


def timed_report(user, parts: int, timeout: float = 900) -> tuple[float, str]:
    """Seconds from the request to ``completed``, and the file's checksum."""
    from django_async_reports import services
    from django_async_reports.models import Report

    started = time.perf_counter()
    report = services.request_report(
        user=user, report_type="bench_orders_partitioned", parameters={"parts": parts}
    )
    while time.perf_counter() - started < timeout:
        report.refresh_from_db()
        if report.is_finished:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if report.status != Report.Status.COMPLETED:
        raise SystemExit(f"report {report.pk} ended {report.status}: {report.error_message}")
    return seconds, report.result_data["checksum"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each, the best kept (a shared machine)"
    )
    args = parser.parse_args()
    csv_report.prepare(args.rows)
    (ROOT / ".bench").mkdir(exist_ok=True)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    results = {}
    load_before = os.getloadavg()[0]
    for concurrency, parts in ((1, 0), (1, args.parts), (2, args.parts)):
        worker = start_worker(concurrency)
        try:
            wait_ready(f"{PREFIX}-{concurrency}")  # start-up is not the report's time
            runs = [timed_report(user, parts) for _ in range(max(1, args.repeat))]
            results[(concurrency, parts)] = min(runs)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    one_task = results[(1, 0)][0]
    one_process = results[(1, args.parts)][0]
    print(
        f"{args.rows:,} rows, CSV on the rows path, {args.parts} parts, "
        f"best of {max(1, args.repeat)} run(s) of each"
    )
    print(f"{'run':42} {'seconds':>8} {'rows/s':>9} {'speed-up':>9}")
    for (concurrency, parts), (seconds, _) in results.items():
        label = f"{'one task' if not parts else f'{parts} parts'}, {concurrency}-process worker"
        print(f"{label:42} {seconds:8.2f} {args.rows / seconds:9,.0f} {one_task / seconds:8.2f}x")
    print(
        f"2 processes against 1, both partitioned: {one_process / results[(2, args.parts)][0]:.2f}x"
    )
    print(
        f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs: other load than this benchmark's takes from the speed-up"
    )
    checksums = {checksum for _, checksum in results.values()}
    print("same file in every run:", len(checksums) == 1, sorted(checksums)[0][:23] + "...")


if __name__ == "__main__":
    main()
