from __future__ import annotations

import time

import pytest

from tests.worker import celery_worker, purge_queues


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker):
    """One real worker (prefork, 2 processes) for the session, on the test database."""
    with django_db_blocker.unblock():
        purge_queues()
        with celery_worker(concurrency=2, name="session") as proc:
            yield proc


def wait_for(predicate, timeout=30.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
