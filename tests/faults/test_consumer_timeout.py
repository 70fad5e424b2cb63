"""A broker ``consumer_timeout`` shorter than a run: the worker lives on, the report ends once.

RabbitMQ closes a channel whose delivery stays unacknowledged longer than its
``consumer_timeout`` (406 PRECONDITION_FAILED), checking once a minute. Before
``broker_channel_error_retry`` that stopped the whole worker; with a run that
always outlives the timeout, the message came back forever. Here the real
broker's timeout is set to 3 s (node-wide, put back afterwards) for a worker
that allows one lost run (``MAX_WORKER_LOSSES`` 1): the cut-off run is
terminated, its redelivery fails the report with a reason, the worker keeps
consuming and a short report requested alongside completes.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.conftest import WORKER_SETTINGS
from tests.faults.services import broker_consumer_timeout

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LONGER_THAN_A_CHECK = {"report_type": "paced", "parameters": {"count": 4000, "delay": 0.02}}


def test_a_run_longer_than_the_consumer_timeout_fails_once_and_the_worker_lives_on(
    fault_workers, fault_env, alice, notified, ledger, django_db_blocker
):
    workers_env = {
        **fault_env,
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps({**WORKER_SETTINGS, "MAX_WORKER_LOSSES": 1}),
    }
    saved_env = fault_workers.env
    try:
        with broker_consumer_timeout(3000):
            with django_db_blocker.unblock():
                fault_workers.stop()
                fault_workers.env = workers_env
                worker = fault_workers.use("faults-consumer-timeout", concurrency=2)
            long = alice.create(title="Outlives the timeout", **LONGER_THAN_A_CHECK, **notified)
            short = alice.create(report_type="numbers", parameters={"count": 3}, **notified)

            # The broker checks once a minute: cut off within about 60 s of the channel opening.
            reports = ledger.check([long["id"], short["id"]], user=alice.user, timeout=150)
            failed = reports[long["id"]]
            assert failed.status == "failed"
            assert failed.error_message.startswith(
                "The worker running this report was lost 1 times"
            )
            assert "cut off by the broker" in failed.error_message
            assert (failed.attempt, failed.worker_losses) == (1, 0)  # one run, never two
            assert reports[short["id"]].status == "completed"
            log = fault_workers.log_tail(200_000)
            assert "PRECONDITION_FAILED - delivery acknowledgement" in log
            assert worker.poll() is None  # reconnected rather than stopped

            after = alice.create(report_type="numbers", parameters={"count": 2}, **notified)
            assert ledger.check([after["id"]], timeout=60)[after["id"]].status == "completed"
    finally:
        with django_db_blocker.unblock():
            fault_workers.stop()  # its channels keep the short timeout
        fault_workers.env = saved_env
