"""Start real Celery worker processes for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def worker_node_name(name: str) -> str:
    """The worker's node and log name, prefixed with ``QUEUE_PREFIX``.

    Node names are unique per broker (each has an exclusive pidbox queue): two
    suites sharing a broker, isolated by ``ASYNC_REPORTS_TEST_QUEUE_PREFIX``,
    would otherwise refuse each other's workers, and write one log file.
    """
    return f"{settings.QUEUE_PREFIX}-{name}"


def worker_log_path(name: str) -> Path:
    return ROOT / ".pytest-workers" / f"{worker_node_name(name)}.log"


def purge_queues() -> None:
    """Empty the test queues so messages of an earlier run never reach this one's workers."""
    from kombu import Connection

    from django_async_reports.routing import report_queues

    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.default_channel
        for queue in report_queues():
            bound = queue(channel)
            bound.declare()
            bound.purge()


def queue_message_counts() -> dict[str, int]:
    """Ready (undelivered) messages per test queue, read with a passive declare."""
    from kombu import Connection

    from django_async_reports.routing import report_queues

    counts = {}
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.default_channel
        for queue in report_queues():
            _, message_count, _ = channel.queue_declare(queue=queue.name, passive=True)
            counts[queue.name] = message_count
    return counts


@contextmanager
def celery_worker(
    *,
    concurrency: int = 2,
    name: str = "w1",
    extra_args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    queues: str | None = None,
):
    """A ``celery worker`` subprocess on the test queues, pointed at the test database.

    ``env`` adds variables to the worker's environment (the e-mail backend and
    its folder, for instance: locmem mail does not cross processes). ``queues``
    (comma-separated) replaces the default, both report queues.
    """
    from django_async_reports.conf import report_settings

    env = {**os.environ, **(env or {})}
    env["ASYNC_REPORTS_TEST_DB_NAME"] = connection.settings_dict["NAME"]
    env["ASYNC_REPORTS_TEST_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    queues = queues or f"{report_settings.QUEUE},{report_settings.HIGH_PRIORITY_QUEUE}"
    log_path = worker_log_path(name)
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115  (kept open for the process's life)
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.celery_app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"{worker_node_name(name)}@%h",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        *extra_args,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_ready(proc, log_path)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _wait_ready(proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()[-4000:]}")
        if b" ready." in log_path.read_bytes():
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery worker not ready after {timeout}s:\n{log_path.read_text()[-4000:]}")
