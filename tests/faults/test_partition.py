"""A partition between a worker and RabbitMQ mid-run: the report completes once, fenced.

The worker reaches the broker through a TCP proxy on loopback (``proxy.py``),
with a 2-second heartbeat. The proxy goes silent mid-run: the broker misses
the worker's heartbeats, closes its connection and delivers the message
again, to a second worker, which takes the report over (a new claim). The
partitioned worker's run cannot write over it: it is cancelled when its own
heartbeat check fails, and every write it might still try is conditional on
its claim. The ledger then finds one stored file, whose checksum matches.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

import pytest

from tests.e2e.conftest import wait_for
from tests.faults.proxy import TcpProxy
from tests.faults.services import broker_address
from tests.worker import celery_worker, purge_queues, worker_log_path

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SLOW = {"report_type": "paced", "parameters": {"count": 400, "delay": 0.02}}  # about 8 s


def test_a_worker_cut_off_from_the_broker_mid_run_loses_it_to_another_once(
    fault_workers, fault_env, alice, notified, ledger, django_db_blocker
):
    with django_db_blocker.unblock():
        fault_workers.stop()  # only this test's workers consume
        purge_queues()
    proxy = TcpProxy(broker_address())
    with ExitStack() as stack:
        stack.callback(proxy.close)
        env = {
            **fault_env,
            "ASYNC_REPORTS_TEST_BROKER_URL": proxy.url(),
            "ASYNC_REPORTS_TEST_CELERY_OVERRIDES": json.dumps({"broker_heartbeat": 2}),
        }
        cut_off = stack.enter_context(celery_worker(name="partitioned", concurrency=1, env=env))
        created = alice.create(title="Partitioned", **SLOW, **notified)
        rid = created["id"]
        alice.wait_processing(rid, min_progress=1, timeout=30)

        proxy.partition()
        stack.enter_context(celery_worker(name="other-side", concurrency=1, env=fault_env))

        reports = ledger.check([rid], user=alice.user, timeout=120)
        report = reports[rid]
        assert report.status == "completed", report.error_message
        assert report.result_data["row_count"] == 400
        # Taken over by a second claim; its file is the one stored.
        assert report.attempt >= 2 and report.worker_losses >= 1
        assert f"/{report.attempt}/" in report.result_file.name

        # The partitioned worker gave up its run rather than finish it: its next
        # write was refused (fenced), or its run was cancelled on the lost connection.
        log = worker_log_path("partitioned")
        wait_for(
            lambda: b"lost" in log.read_bytes().lower() or b"cancel" in log.read_bytes().lower(),
            timeout=30,
            message="the partitioned worker to notice",
        )
        proxy.heal()
        time.sleep(1)
        assert cut_off.poll() is None  # it reconnects rather than die
        # Nothing it did afterwards changed the report.
        after = ledger.check([rid], user=alice.user, timeout=5)[rid]
        assert (after.attempt, after.result_file.name) == (report.attempt, report.result_file.name)
