"""Fixtures of the fault tests: workers of their own, configured as a fresh install.

The end-to-end tests turn ``TASK_RESULTS`` on to read task return values; these
tests run with the default (off), in the worker and in the web process, so the
package's own dependence on each service is what is tested. Workers mail a
loopback SMTP server and may post webhooks to a loopback receiver, so the
ledger (``ledger.py``) can count what left for each report.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import (  # noqa: F401  (fixtures used by this package's tests)
    Workers,
    alice,
    media_root,
)
from tests.faults.ledger import Ledger
from tests.loopback_servers import SMTPServer, WebhookReceiver

FRESH_INSTALL = {"TASK_RESULTS": False}
# Webhooks may reach the loopback receiver; their retries wait a second, not minutes.
DELIVERY = {
    "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
    "WEBHOOK_ALLOWED_PORTS": None,  # loopback receivers on random ports
    "WEBHOOK_RETRY_BACKOFF": 1,
    "WEBHOOK_TIMEOUT": 3,
}
WORKER_SETTINGS = {**FRESH_INSTALL, **DELIVERY}


@pytest.fixture(autouse=True)
def fresh_install_settings(settings):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **WORKER_SETTINGS}


@pytest.fixture(scope="package")
def fault_smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def fault_receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def fault_env(fault_smtp) -> dict[str, str]:
    """The environment of every fault test's worker; a case adds its own variables to it."""
    return {
        **fault_smtp.worker_env(),
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(WORKER_SETTINGS),
    }


@pytest.fixture(scope="package")
def fault_workers(django_db_setup, django_db_blocker, fault_env):
    manager = Workers(fault_env)
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


@pytest.fixture
def notified(fault_receiver) -> dict[str, object]:
    """Request fields asking for both notifications: an e-mail and a webhook."""
    return {"send_email": True, "webhook_url": fault_receiver.url("/reports/done")}


@pytest.fixture
def ledger(media_root, fault_smtp, fault_receiver, fault_workers) -> Ledger:  # noqa: F811
    """The ledger check of this case, counting files, e-mails, webhooks and worker deaths."""
    return Ledger(media_root, fault_smtp, fault_receiver, watch=[fault_workers])


@pytest.fixture(scope="package", autouse=True)
def services_running_afterwards():
    """Whatever a case did (or a process it started does late), the services end up running."""
    yield
    from tests.faults.services import start_rabbitmq, start_redis, wait_port

    start_rabbitmq()
    start_redis()
    wait_port("127.0.0.1", 5432, is_open=True, timeout=120)
