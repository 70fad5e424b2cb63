"""SMTP drops the connection after DATA: the e-mail is sent again, recognisably the same.

The server took the message, but the worker never heard its 250: to the
worker the send failed, and a notification is delivered at least once, so
the step retries and sends it again. Both copies carry the same Message-ID,
stable per outcome of the report, so a mail client shows one message.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Workers, wait_for
from tests.faults.conftest import FRESH_INSTALL
from tests.faults.ledger import check_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp_worker(fault_workers, smtp_server, django_db_blocker):
    """A worker whose e-mail goes to the loopback SMTP server."""
    with django_db_blocker.unblock():
        fault_workers.stop()
    workers = Workers(
        {**smtp_server.worker_env(), "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(FRESH_INSTALL)}
    )
    try:
        with django_db_blocker.unblock():
            yield workers.use("faults-smtp", concurrency=2)
    finally:
        with django_db_blocker.unblock():
            workers.stop()


def test_smtp_dropping_after_data_resends_the_same_message(
    smtp_worker, smtp_server, alice, media_root
):
    smtp_server.clear()
    smtp_server.drop_after_data(1)
    created = alice.create(
        report_type="numbers", parameters={"count": 3}, send_email=True, title="Mailed twice"
    )

    check_ledger([created["id"]], media_root, user=alice.user, timeout=120)  # notified too
    wait_for(lambda: len(smtp_server.received) >= 2, timeout=10, message="the second copy")
    first, second = smtp_server.received
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert created["id"] in first.message["Message-ID"]
    assert first.rcpt_tos == second.rcpt_tos == [alice.user.email]
    assert smtp_worker.poll() is None
