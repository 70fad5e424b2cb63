"""A worker killed whole, PostgreSQL restarted mid-run or in post-processing: each report ends once.

Before: a PostgreSQL restart while a report ran left it ``processing`` at 0 %
forever. Each case requests reports over HTTP, applies the fault to the real
process or service, and ends with the ledger check (``ledger.py``).
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from django.db import connection

from django_async_reports.models import Report
from tests.e2e.conftest import Workers, wait_for
from tests.faults.conftest import FRESH_INSTALL
from tests.faults.ledger import check_ledger
from tests.faults.services import port_open, restart_postgres, wait_port

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SLOW = {"report_type": "paced", "parameters": {"count": 200, "delay": 0.02}}  # about 4 s


def test_a_whole_worker_killed_mid_report_hands_it_to_the_next_worker(
    fault_workers, worker, alice, media_root, django_db_blocker
):
    created = alice.create(title="Killed worker", **SLOW)
    alice.wait_processing(created["id"], min_progress=1, timeout=30)

    os.killpg(worker.pid, signal.SIGKILL)  # main process and pool: nothing acks, nothing cleans
    worker.wait(timeout=10)
    fault_workers.stop()
    with django_db_blocker.unblock():
        # The broker redelivers the killed run's message to it (the queues kept).
        fault_workers.use("faults-after-kill", concurrency=2, purge=False)

    reports = check_ledger([created["id"]], media_root, user=alice.user, timeout=90)
    report = reports[created["id"]]
    assert report.status == "completed"
    # Taken over once: the second claim, one worker lost, the file of attempt 2.
    assert (report.attempt, report.worker_losses) == (2, 1)
    assert "/2/" in report.result_file.name


def test_postgresql_restarted_mid_run_the_report_completes(worker, alice, media_root):
    created = alice.create(title="Database restarted", **SLOW)
    rid = created["id"]
    alice.wait_processing(rid, min_progress=1, timeout=30)

    restart_postgres()
    connection.close()  # this test's own session was cut too

    reports = check_ledger([rid], media_root, user=alice.user, timeout=120)
    report = reports[rid]
    assert report.status == "completed", report.error_message
    assert report.result_data["row_count"] == 200
    # The run met the outage and was retried (a new claim), never left processing.
    assert report.attempt >= 2 or report.retry_count >= 1
    assert worker.poll() is None
    after = alice.create(report_type="numbers", parameters={"count": 2})
    assert alice.wait_finished(after["id"], timeout=60)["status"] == "completed"
    assert Report.objects.filter(user=alice.user, status="processing").count() == 0


def test_postgresql_restarted_during_post_processing_keeps_the_finished_file(
    fault_workers, alice, media_root, tmp_path, django_db_blocker
):
    """Before: post-processing failed after 3 retries 10 s apart and deleted the file."""
    marker = tmp_path / "restarted"
    workers = Workers(
        {
            "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(FRESH_INSTALL),
            "ASYNC_REPORTS_TEST_FAILPOINT": "restart-database-in-post-processing",
            "ASYNC_REPORTS_TEST_FAILPOINT_MARKER": str(marker),
        }
    )
    with django_db_blocker.unblock():
        fault_workers.stop()
        workers.use("faults-db-post-process", concurrency=2)
    try:
        created = alice.create(report_type="numbers", parameters={"count": 9}, compress=True)
        rid = created["id"]
        wait_for(
            lambda: marker.exists() and marker.read_text(),
            timeout=120,
            message="the worker to restart PostgreSQL",
        )
        wait_port("127.0.0.1", 5432, is_open=True, timeout=120)
        connection.close()  # this test's own session was cut too

        reports = check_ledger([rid], media_root, user=alice.user, timeout=120)
        report = reports[rid]
        assert report.status == "completed", report.error_message
        assert report.result_data["compressed"] is True
        assert report.attempt == 1  # the file was kept, never generated again
    finally:
        if not port_open("127.0.0.1", 5432):
            restart_postgres()
        with django_db_blocker.unblock():
            workers.stop()
