"""What an operator does to the test broker with ``rabbitmqctl``: policies, vhosts, queues.

The broker is shared with other suites: everything made here is named after
``QUEUE_PREFIX`` and removed by the context managers whatever happens.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from kombu import Connection


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def queue_info(name: str, vhost: str = "/") -> dict[str, Any] | None:
    """The queue's type, arguments ({name: value}), policy and message count; None if absent."""
    rows = json.loads(
        rabbitmqctl(
            "list_queues",
            "-p",
            vhost,
            "--formatter",
            "json",
            "name",
            "type",
            "arguments",
            "policy",
            "messages",
        )
        or "[]"
    )
    for row in rows:
        if row["name"] == name:
            row["arguments"] = {key: value for key, _type, value in row["arguments"]}
            return row
    return None


def wait_for_policy(queue: str, policy: str, vhost: str = "/", timeout: float = 10) -> None:
    """Policies reach queues asynchronously: wait until ``queue`` shows ``policy``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = queue_info(queue, vhost)
        if info is not None and info["policy"] == policy:
            return
        time.sleep(0.1)
    raise AssertionError(f"policy {policy!r} did not reach queue {queue!r} in {timeout}s")


@contextmanager
def policy(name: str, pattern: str, definition: Mapping[str, Any], vhost: str = "/"):
    """A policy on the queues matching ``pattern``, cleared afterwards."""
    rabbitmqctl(
        "set_policy", "-p", vhost, "--apply-to", "queues", name, pattern, json.dumps(definition)
    )
    try:
        yield
    finally:
        rabbitmqctl("clear_policy", "-p", vhost, name)


@contextmanager
def vhost(name: str) -> Iterator[str]:
    """A vhost of its own, with the broker URL's user allowed everything; yields its URL.

    Deleting the vhost deletes whatever was declared in it.
    """
    url = urlsplit(settings.CELERY_BROKER_URL)
    user = url.username or "guest"
    if name in rabbitmqctl("list_vhosts", "name").split():
        rabbitmqctl("delete_vhost", name)  # left over by an interrupted run
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield urlunsplit(url._replace(path="/" + quote(name, safe="")))
    finally:
        rabbitmqctl("delete_vhost", name)


def delete_queues(*names: str, exchanges: tuple[str, ...] = (), url: str | None = None) -> None:
    with Connection(url or settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
        channel.close()


def declare_raw(name: str, arguments: Mapping[str, Any], *, url: str | None = None) -> None:
    """Declare a durable queue with exactly ``arguments``, as an operator's script would."""
    with Connection(url or settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        channel.queue_declare(
            queue=name, durable=True, auto_delete=False, arguments=dict(arguments)
        )
        channel.close()
