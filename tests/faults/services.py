"""Stopping and starting this machine's real services for the fault tests.

Every stop is a context manager that starts the service again whatever happens
in its block, and waits until it answers, so the rest of the suite (and CI)
finds it running. The start commands are the ones ``.ci/run`` uses.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "{port}",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def wait_port(host: str, port: int, *, is_open: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port) == is_open:
            return
        time.sleep(0.2)
    state = "open" if is_open else "closed"
    raise AssertionError(f"{host}:{port} is not {state} after {timeout}s")


def redis_address() -> tuple[str, int]:
    url = urlsplit(settings.REDIS_URL)
    return url.hostname or "127.0.0.1", url.port or 6379


def start_redis() -> None:
    host, port = redis_address()
    if port_open(host, port):
        return
    subprocess.run(["mkdir", "-p", "/var/lib/redis", "/var/log/redis"], check=True, timeout=10)
    command = [part.format(port=port) for part in REDIS_START]
    subprocess.run(command, check=True, timeout=30)
    wait_port(host, port, is_open=True)


@contextmanager
def redis_stopped() -> Iterator[None]:
    """Redis is down inside the block (its data is lost: it keeps nothing on disk)."""
    host, port = redis_address()
    try:
        subprocess.run(
            ["redis-cli", "-h", host, "-p", str(port), "shutdown", "nosave"],
            timeout=30,
            capture_output=True,
        )
        wait_port(host, port, is_open=False)
        yield
    finally:
        start_redis()


# -- RabbitMQ ------------------------------------------------------------------------
def broker_address() -> tuple[str, int]:
    url = urlsplit(settings.CELERY_BROKER_URL)
    return url.hostname or "127.0.0.1", url.port or 5672


def start_rabbitmq() -> None:
    """Start the RabbitMQ application, or the whole node as ``.ci/run`` does."""
    host, port = broker_address()
    if port_open(host, port):
        return
    started = subprocess.run(["rabbitmqctl", "start_app"], timeout=120, capture_output=True)
    if started.returncode != 0:
        subprocess.run(["rabbitmq-server", "-detached"], timeout=60, capture_output=True)
    wait_port(host, port, is_open=True, timeout=120)


@contextmanager
def rabbitmq_stopped(*, stop: bool = True) -> Iterator[None]:
    """The broker is down inside the block (``stop_app``: its durable queues survive).

    ``stop=False``: something in the block stops it; it is started again all the same.
    """
    host, port = broker_address()
    try:
        if stop:
            subprocess.run(
                ["rabbitmqctl", "stop_app"], timeout=120, check=True, capture_output=True
            )
            wait_port(host, port, is_open=False)
        yield
    finally:
        start_rabbitmq()


# -- PostgreSQL ----------------------------------------------------------------------
def postgres_cluster() -> list[str]:
    """``pg_ctlcluster`` arguments naming this machine's cluster (``.ci/run``'s)."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def restart_postgres() -> None:
    """A fast restart (``-m fast``: sessions are cut), as a failover looks to clients.

    Whatever happens, PostgreSQL is running again when this returns.
    """
    try:
        subprocess.run(
            [*postgres_cluster(), "restart", "-m", "fast"], timeout=120, capture_output=True
        )
    finally:
        if not port_open("127.0.0.1", 5432):
            subprocess.run([*postgres_cluster(), "start"], timeout=120, capture_output=True)
        wait_port("127.0.0.1", 5432, is_open=True, timeout=120)


def _memory_watermark() -> str:
    read = subprocess.run(
        ["rabbitmqctl", "eval", "vm_memory_monitor:get_vm_memory_high_watermark()."],
        timeout=60,
        capture_output=True,
        text=True,
        check=True,
    )
    value = read.stdout.strip().splitlines()[-1]
    float(value)  # a relative watermark ("0.4"); anything else is not restored by this code
    return value


@contextmanager
def broker_memory_alarm() -> Iterator[None]:
    """RabbitMQ's memory alarm is on inside the block: it blocks every publishing connection.

    The watermark is set far below what the broker uses, then put back to what it was.
    """
    before = _memory_watermark()
    try:
        subprocess.run(
            ["rabbitmqctl", "set_vm_memory_high_watermark", "0.00001"],
            timeout=60,
            check=True,
            capture_output=True,
        )
        yield
    finally:
        subprocess.run(
            ["rabbitmqctl", "set_vm_memory_high_watermark", before], timeout=60, capture_output=True
        )


def _rabbit_eval(expression: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "eval", expression], timeout=60, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def broker_consumer_timeout(milliseconds: int) -> Iterator[None]:
    """Channels opened inside the block get RabbitMQ's ``consumer_timeout`` of ``milliseconds``.

    The node-wide value (a channel reads it when it opens) is put back afterwards;
    channels opened meanwhile keep the short one, so restart their worker.
    """
    before = _rabbit_eval("application:get_env(rabbit, consumer_timeout).")
    try:
        _rabbit_eval(f"application:set_env(rabbit, consumer_timeout, {int(milliseconds)}).")
        yield
    finally:
        if before.startswith("{ok,"):
            value = int(before[len("{ok,") : -1])
            _rabbit_eval(f"application:set_env(rabbit, consumer_timeout, {value}).")
        else:  # "undefined": the broker's built-in default
            _rabbit_eval("application:unset_env(rabbit, consumer_timeout).")
