"""The processes of ``system.py``: a Celery worker and a gunicorn server, each in a session of
its own so that it ends with its children (prefork pool, gunicorn workers) whatever happens.

Logs go to ``.bench/system-<name>.log``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOGS = ROOT / ".bench"
#: Seconds a process has to stop after a TERM (a worker finishes its running task).
TERM_SECONDS = 20


@contextmanager
def process_group(command: list[str], log_name: str, ready: Callable[[Path], bool]) -> Iterator:
    """A subprocess in a session of its own, ended with its children whatever happens."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    log_path = LOGS / f"system-{log_name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=HERE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not ready(log_path):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{log_name} did not start:\n{tail}")
                time.sleep(0.2)
            yield proc
        finally:
            end_group(proc)


def end_group(proc: subprocess.Popen) -> None:
    """TERM to the leader (a warm shutdown: it stops its own children), then KILL the rest."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=TERM_SECONDS)
    # The group outlives its leader while a child (a pool process, a gunicorn worker) is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@contextmanager
def celery_worker(concurrency: int, name: str) -> Iterator:
    """A prefork worker ``name`` on the report queues, emptied first: start-up is never timed."""
    from django_async_reports.conf import report_settings
    from tests.worker import purge_queues

    purge_queues()
    queues = f"{report_settings.QUEUE},{report_settings.HIGH_PRIORITY_QUEUE}"
    node = f"{os.environ['ASYNC_REPORTS_TEST_QUEUE_PREFIX']}-system-{name}@%h"
    # The end-to-end tests' worker flags (tests/worker.py).
    command = [sys.executable, *f"-m celery -A system_worker worker -Q {queues}".split()]
    command += [*f"-c {concurrency} -n {node} --loglevel INFO".split()]
    command += ["--without-gossip", "--without-mingle"]
    with process_group(command, f"worker-{name}", lambda p: b" ready." in p.read_bytes()):
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def web_server(workers: int, threads: int) -> Iterator[str]:
    """gunicorn (gthread: keep-alive) on loopback serving ``system_site``; yields its base URL."""
    import requests
    from system_urls import TRIVIAL_PATH

    base_url = f"http://127.0.0.1:{free_port()}"

    def answers(_: Path) -> bool:
        try:
            return requests.get(f"{base_url}/{TRIVIAL_PATH}", timeout=2).status_code > 0
        except requests.ConnectionError:
            return False

    bind = base_url.removeprefix("http://")
    command = [sys.executable, *f"-m gunicorn --bind {bind} --workers {workers}".split()]
    command += [*f"--worker-class gthread --threads {threads} --log-level warning".split()]
    command += ["django.core.wsgi:get_wsgi_application()"]
    with process_group(command, "gunicorn", answers):
        yield base_url
