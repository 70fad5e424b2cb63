"""Fixtures of the fault tests: a worker of their own, configured as a fresh install.

The end-to-end tests turn ``TASK_RESULTS`` on to read task return values; these
tests run with the default (off), in the worker and in the web process, so the
package's own dependence on each service is what is tested.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import (  # noqa: F401  (fixtures used by this package's tests)
    Workers,
    alice,
    media_root,
)

FRESH_INSTALL = {"TASK_RESULTS": False}


@pytest.fixture(autouse=True)
def fresh_install_settings(settings):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **FRESH_INSTALL}


@pytest.fixture(scope="package")
def fault_workers(django_db_setup, django_db_blocker):
    manager = Workers({"ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(FRESH_INSTALL)})
    try:
        yield manager
    finally:
        with django_db_blocker.unblock():
            manager.stop()


@pytest.fixture
def worker(fault_workers, django_db_blocker):
    """A two-process worker, started once for the fault tests and restarted if it died."""
    with django_db_blocker.unblock():
        return fault_workers.use("faults", concurrency=2)


@pytest.fixture(scope="package", autouse=True)
def services_running_afterwards():
    """Whatever a case did (or a process it started does late), the services end up running."""
    yield
    from tests.faults.services import start_rabbitmq, start_redis, wait_port

    start_rabbitmq()
    start_redis()
    wait_port("127.0.0.1", 5432, is_open=True, timeout=120)
