"""SMTP drops the connection after DATA: the e-mail is sent again, recognisably the same.

The server took the message, but the worker never heard its 250: to the
worker the send failed, and a notification is delivered at least once, so
the step retries and sends it again. Both copies carry the same Message-ID,
stable per outcome of the report, so a mail client shows one message; the
webhook, a channel of its own, is posted once.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_smtp_dropping_after_data_resends_the_same_message(
    worker, fault_smtp, fault_receiver, alice, notified, ledger
):
    fault_smtp.drop_after_data(1)
    created = alice.create(
        report_type="numbers", parameters={"count": 3}, title="Mailed twice", **notified
    )
    rid = created["id"]

    ledger.check([rid], user=alice.user, timeout=120, resent=True)  # one Message-ID
    copies = [r for r in fault_smtp.received if f"-{rid}-" in r.message["Message-ID"]]
    assert len(copies) == 2
    first, second = copies
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.rcpt_tos == second.rcpt_tos == [alice.user.email]
    hooks = [r for r in fault_receiver.received() if r.json()["data"]["report_id"] == rid]
    assert len(hooks) == 1
    assert worker.poll() is None
