"""The system: request latency, progress endpoint throughput and worker scaling, each next to
its bare baseline, all measured in this run on real processes.

``latency``
    Seconds from sending ``POST /api/v1/reports/`` (a one-row ``numbers``
    report) to its claim by an idle worker (the row's ``started_at``, written by
    the worker at the claim), against a bare Celery round trip: a trivial task
    sent with ``apply_async`` on the same route (broker, exchange, queue,
    priority), whose start the same worker records. Both ends on this
    machine's wall clock; samples alternate, each once the worker is idle again.
``progress``
    Requests per second of ``GET /api/v1/reports/<id>/progress/`` for a
    processing report of the requesting user, against a trivial DRF view with
    the API's authentication, permission and throttle classes, on the same
    gunicorn server, loaded from another process on loopback (wrk, else
    ``system_load.py``), in alternating rounds. Also the database queries of
    one progress request and one trivial request (in-process test client).
``workers``
    Wall seconds from the first of N small reports (``numbers``, 100 rows each)
    requested through the service layer to the last one completed (its
    ``completed_at``), on a 1-process and then a 2-process prefork worker.

Real processes: ``celery worker`` (``-A system_worker``: the test project's app,
``configure_celery`` applied) on queues of their own (prefix
``ASYNC_REPORTS_TEST_QUEUE_PREFIX``, ``bench_system`` unless set), gunicorn
(``bench`` extra), PostgreSQL (database ``ASYNC_REPORTS_BENCH_DB``, else
``async_reports_system_bench``), Redis (``ASYNC_REPORTS_TEST_REDIS_URL``).
Settings: ``system_site.py``. Logs: ``.bench/system-*.log``.

    .venv/bin/python benchmarks/system.py --samples 50 --reports 200 --duration 10
    .venv/bin/python benchmarks/system.py --samples 10 --reports 20 --duration 3  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
DB_NAME = os.environ.get("ASYNC_REPORTS_BENCH_DB", "async_reports_system_bench")
os.environ["DJANGO_SETTINGS_MODULE"] = "system_site"
os.environ["ASYNC_REPORTS_TEST_DB_NAME"] = DB_NAME
os.environ.setdefault("ASYNC_REPORTS_TEST_QUEUE_PREFIX", "bench_system")
os.environ.setdefault("ASYNC_REPORTS_TEST_MEDIA_ROOT", str(HERE.parent / ".bench" / "system-media"))

import system_load  # noqa: E402
from system_processes import LOGS, celery_worker, web_server  # noqa: E402

MEASURES = ("latency", "progress", "workers")
FINISHED = ("completed", "failed", "cancelled")
#: Pause after each latency sample: the worker acknowledges and stores results after the run.
SETTLE_SECONDS = 0.05


def create_database() -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            c.execute(f'CREATE DATABASE "{DB_NAME}"')


# -- measures -----------------------------------------------------------------------
def wait_finished(report_id: Any, timeout: float = 120) -> Any:
    from django_async_reports.models import Report

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = Report.objects.get(pk=report_id)
        if report.status in FINISHED:
            return report
        time.sleep(0.01)
    raise RuntimeError(f"report {report_id} not finished after {timeout}s")


def post_to_processing(session: Any, base_url: str) -> float:
    """Seconds from sending the POST to the worker's claim of the report it created."""
    sent = time.time()
    response = session.post(
        f"{base_url}/api/v1/reports/",
        json={"report_type": "numbers", "parameters": {"count": 1}},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:500]}")
    report = wait_finished(response.json()["id"])  # the worker is idle again
    if report.status != "completed":
        raise RuntimeError(f"report {report.pk} ended {report.status}: {report.error_message}")
    return report.started_at.timestamp() - sent


def bare_round_trip() -> float:
    """Seconds from ``apply_async`` of the trivial task to its start in the worker."""
    from system_worker import started_at

    from django_async_reports import routing

    sent = time.time()
    result = started_at.apply_async(**routing.route_for_priority("normal"))
    started = result.get(timeout=60)
    result.forget()
    return started - sent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure_latency(base_url: str, token: str, samples: int, warmup: int) -> dict:
    import requests

    ours: list[float] = []
    bare: list[float] = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        for i in range(warmup + samples):
            report_seconds = post_to_processing(session, base_url)
            time.sleep(SETTLE_SECONDS)
            bare_seconds = bare_round_trip()
            time.sleep(SETTLE_SECONDS)
            if i >= warmup:
                ours.append(report_seconds)
                bare.append(bare_seconds)
    summary = {
        name: {"median": statistics.median(values), "p90": percentile(values, 0.9)}
        for name, values in (("ours", ours), ("bare", bare))
    }
    return {**summary, "samples": {"ours": ours, "bare": bare}}


def running_report(user: Any, seconds: float) -> Any:
    """A ``numbers`` report running for ``seconds``, once it is processing with cached progress.

    A row every 10 ms: its progress moves by a percent (``PROGRESS_STEP``) every
    ``seconds / 100``, so the cache holds a running report's rows and rate.
    """
    from django_async_reports import progress, services

    rows = min(5_000_000, int(seconds * 100))
    report = services.request_report(
        user=user, report_type="numbers", parameters={"count": rows, "delay": 0.01}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cached = progress.read_cache(report.pk) or {}
        if cached.get("status") == "processing" and cached.get("rows"):
            return report
        time.sleep(0.05)
    raise RuntimeError(f"report {report.pk} not processing with progress after 60s")


def queries_per_request(path: str, token: str) -> int:
    """Database queries of one GET of ``path`` in this process (the second one: warm)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get(path)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    return len(captured)


def measure_progress(base_url: str, user: Any, token: str, args: argparse.Namespace) -> dict:
    import requests
    from system_urls import TRIVIAL_PATH

    from django_async_reports import services

    report = running_report(user, args.rounds * 2 * (args.duration + 2) + 60)
    paths = {"progress": f"/api/v1/reports/{report.pk}/progress/", "trivial": f"/{TRIVIAL_PATH}"}
    try:
        answer = requests.get(
            base_url + paths["progress"], headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        if answer.get("status") != "processing" or answer.get("rows_per_second") is None:
            raise RuntimeError(f"the progress answer is not a running report's: {answer}")
        queries = {name: queries_per_request(path, token) for name, path in paths.items()}
        totals = {name: {"requests": 0, "errors": 0, "seconds": 0.0} for name in paths}

        def load(name: str, seconds: float) -> dict:
            return system_load.measure(
                base_url + paths[name], token, seconds, args.connections, args.load
            )

        for name in paths:
            load(name, 1)  # warm-up: every server worker has loaded the URLs and connected
        for round_ in range(args.rounds):
            for name in sorted(paths, reverse=round_ % 2 == 1):
                measured = load(name, args.duration)
                for key in totals[name]:
                    totals[name][key] += measured[key]
    finally:
        services.cancel_report(report)
        wait_finished(report.pk)
    for name, total in totals.items():
        if total["errors"]:
            raise RuntimeError(f"{name}: {total['errors']} failed requests under load")
        total["rps"] = total["requests"] / total["seconds"]
    return {"rps": {n: t["rps"] for n, t in totals.items()}, "totals": totals, "queries": queries}


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def timed_reports(user: Any, concurrency: int, count: int, rows: int) -> tuple[float, float, float]:
    """Seconds from the first request to the last ``completed_at`` and to the last request,
    and the share of the machine's CPU time that was busy meanwhile (every process: the
    worker, PostgreSQL, RabbitMQ, Redis, this one): a machine already busy with one worker
    process has no room for a second one to double the rate."""
    from django.db.models import Max

    from django_async_reports import services
    from django_async_reports.models import Report

    with celery_worker(concurrency, f"c{concurrency}"):
        cpu_before = cpu_times()
        started = time.time()
        ids = [
            services.request_report(user=user, report_type="numbers", parameters={"count": rows}).pk
            for _ in range(count)
        ]
        requested = time.time() - started
        reports = Report.objects.filter(pk__in=ids)
        deadline = time.monotonic() + 60 + count * 5
        while reports.exclude(status__in=FINISHED).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{count} reports not finished on the {concurrency}-process worker"
                )
            time.sleep(0.1)
        cpu_after = cpu_times()
    busy = (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1])
    failed = reports.exclude(status="completed").count()
    if failed:
        raise RuntimeError(f"{failed} of {count} reports did not complete")
    last = reports.aggregate(last=Max("completed_at"))["last"].timestamp()
    return last - started, requested, busy


def measure_workers(user: Any, count: int, rows: int) -> dict:
    timed = {str(c): timed_reports(user, c, count, rows) for c in (1, 2)}
    seconds = {c: both[0] for c, both in timed.items()}
    return {
        "seconds": seconds,
        "request_seconds": {c: both[1] for c, both in timed.items()},
        "cpu_busy": {c: both[2] for c, both in timed.items()},
        "reports": count,
        "rows": rows,
        "reports_per_second": {c: count / s for c, s in seconds.items()},
    }


# -- the table ----------------------------------------------------------------------
def row(measure: str, ours: float, baseline: float, target: str) -> dict:
    """A line of the table; ``target`` is "<= 2.0x" or ">= 0.8x" (ours / baseline), or "-"."""
    ratio = ours / baseline if target != "-" else None
    met = None
    if ratio is not None:
        bound = float(target[3:-1])
        met = ratio <= bound if target.startswith("<=") else ratio >= bound
    return dict(measure=measure, ours=ours, baseline=baseline, ratio=ratio, target=target, met=met)


def table_rows(results: dict, args: argparse.Namespace) -> list[dict]:
    """measure, ours, baseline, ratio (ours / baseline), target and whether it is met."""
    lines = []
    if "latency" in results:
        ours, bare = results["latency"]["ours"], results["latency"]["bare"]
        for stat in ("median", "p90"):
            measure = f"POST to processing, {stat} ms (bare Celery round trip)"
            lines.append((measure, ours[stat] * 1000, bare[stat] * 1000, "<= 2.0x"))
    if "progress" in results:
        rps, queries = results["progress"]["rps"], results["progress"]["queries"]
        measure = "progress requests/s (trivial DRF view)"
        lines.append((measure, rps["progress"], rps["trivial"], ">= 0.8x"))
        measure = "database queries per request (trivial DRF view)"
        lines.append((measure, queries["progress"], queries["trivial"], "-"))
    if "workers" in results:
        rate = results["workers"]["reports_per_second"]
        measure = f"reports/s, {args.reports} x {args.rows} rows, 2 processes (1 process)"
        lines.append((measure, rate["2"], rate["1"], ">= 1.6x"))
        busy = results["workers"]["cpu_busy"]
        measure = "machine CPU busy %, 2 processes (1 process)"
        lines.append((measure, busy["2"] * 100, busy["1"] * 100, "-"))
    return [row(*line) for line in lines]


def print_table(rows: list[dict]) -> None:
    print(f"{'measure':62} {'ours':>9} {'baseline':>9} {'ratio':>7} {'target':>8} {'met?':>5}")
    for line in rows:
        ratio = "-" if line["ratio"] is None else f"{line['ratio']:.2f}x"
        met = "-" if line["met"] is None else ("yes" if line["met"] else "NO")
        print(
            f"{line['measure']:62} {line['ours']:9.1f} {line['baseline']:9.1f} {ratio:>7} "
            f"{line['target']:>8} {met:>5}"
        )


#: (flag, type, default, help) of the command line.
OPTIONS = [
    ("--only", str, ",".join(MEASURES), f"comma-separated, of: {', '.join(MEASURES)}"),
    ("--samples", int, 50, "latency samples of each kind"),
    ("--warmup", int, 5, "latency samples of each kind left out first"),
    ("--duration", float, 10.0, "seconds of load per round and endpoint"),
    ("--rounds", int, 3, "rounds of load, the endpoints alternating"),
    ("--connections", int, 4, "keep-alive connections of the load"),
    ("--load", str, None, "wrk or python (default: wrk when on the PATH)"),
    ("--server-workers", int, 2, "gunicorn worker processes (gthread)"),
    ("--threads", int, 2, "threads per gunicorn worker"),
    ("--worker-concurrency", int, 2, "Celery processes during latency and progress"),
    ("--reports", int, 200, "reports of the workers measure"),
    ("--rows", int, 100, "rows per report of the workers measure"),
    ("--json", Path, None, "write the settings, results and table here"),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, kind, default, text in OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    args = parser.parse_args()
    args.only = [m.strip() for m in args.only.split(",") if m.strip()]
    if unknown := set(args.only) - set(MEASURES):
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")
    args.load = args.load or system_load.default_tool()
    if args.load not in ("wrk", "python"):
        parser.error("--load is wrk or python")
    return args


def main() -> None:
    args = parse_args()
    # A TERM (a CI's timeout) unwinds through the finally blocks that end the processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    LOGS.mkdir(exist_ok=True)
    create_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from django_async_reports.models import Report

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench_system")
    token = Token.objects.get_or_create(user=user)[0].key
    Report.objects.filter(user=user).delete()  # an earlier run's reports
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {}
    if {"latency", "progress"} & set(args.only):
        with (
            celery_worker(args.worker_concurrency, "web"),
            web_server(args.server_workers, args.threads) as url,
        ):
            if "latency" in args.only:
                results["latency"] = measure_latency(url, token, args.samples, args.warmup)
            if "progress" in args.only:
                results["progress"] = measure_progress(url, user, token, args)
    if "workers" in args.only:
        results["workers"] = measure_workers(user, args.reports, args.rows)
    rows = table_rows(results, args)
    print(
        f"The system: {', '.join(args.only)}; load by {args.load}, {args.connections} connections; "
        f"gunicorn {args.server_workers} workers x {args.threads} threads"
    )
    print_table(rows)
    if "workers" in results:
        seconds, asked = results["workers"]["seconds"], results["workers"]["request_seconds"]
        print(
            f"{args.reports} reports: {seconds['1']:.2f} s on 1 process, {seconds['2']:.2f} s on 2 "
            f"(of which requesting them: {asked['1']:.2f} s, {asked['2']:.2f} s)"
        )
    print(
        f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        args.json.write_text(
            json.dumps({"settings": settings, "results": results, "table": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
