"""A worker process or a whole worker killed, PostgreSQL restarted: each report ends once.

Before: a PostgreSQL restart while a report ran left it ``processing`` at 0 %
forever. Each case requests reports over HTTP, applies the fault to the real
process or service, and ends with the ledger check (``ledger.py``).
"""

from __future__ import annotations

import os
import signal

import pytest
from django.db import connection

from django_async_reports.models import Report
from tests.celery_app import app as celery_app
from tests.e2e.conftest import Workers, wait_for
from tests.faults.services import port_open, restart_postgres, wait_port

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SLOW = {"report_type": "paced", "parameters": {"count": 200, "delay": 0.02}}  # about 4 s


def pool_process_running(report_id: str) -> int:
    """The pid of the worker's pool process running the report's generation (Celery inspect)."""
    task_id = Report.objects.get(pk=report_id).celery_task_id

    def find() -> int | None:
        # A connection of its own: an earlier case may have restarted the broker
        # under the app's pooled one.
        try:
            with celery_app.connection_for_write() as connection:
                inspect = celery_app.control.inspect(timeout=2, connection=connection)
                active = inspect.active() or {}
        except OSError:
            return None
        for tasks in active.values():
            for task in tasks:
                if task["id"] == task_id:
                    return task["worker_pid"]
        return None

    return wait_for(find, timeout=30, message=f"the pool process running {report_id}")


def test_a_worker_process_killed_mid_report_is_redelivered_and_completes_once(
    worker, alice, notified, ledger
):
    created = alice.create(title="Killed process", **SLOW, **notified)
    rid = created["id"]
    alice.wait_processing(rid, min_progress=1, timeout=30)

    os.kill(pool_process_running(rid), signal.SIGKILL)  # the child only: the worker goes on

    reports = ledger.check([rid], user=alice.user, timeout=90, killed=True)
    report = reports[rid]
    assert report.status == "completed", report.error_message
    assert report.result_data["row_count"] == 200
    assert (report.attempt, report.worker_losses) == (2, 1)
    assert "/2/" in report.result_file.name
    assert worker.poll() is None


def test_a_whole_worker_killed_mid_report_hands_it_to_the_next_worker(
    fault_workers, worker, alice, notified, ledger, django_db_blocker
):
    created = alice.create(title="Killed worker", **SLOW, **notified)
    alice.wait_processing(created["id"], min_progress=1, timeout=30)

    os.killpg(worker.pid, signal.SIGKILL)  # main process and pool: nothing acks, nothing cleans
    worker.wait(timeout=10)
    fault_workers.stop()
    with django_db_blocker.unblock():
        # The broker redelivers the killed run's message to it (the queues kept).
        fault_workers.use("faults-after-kill", concurrency=2, purge=False)

    reports = ledger.check([created["id"]], user=alice.user, timeout=90, killed=True)
    report = reports[created["id"]]
    assert report.status == "completed"
    # Taken over once: the second claim, one worker lost, the file of attempt 2.
    assert (report.attempt, report.worker_losses) == (2, 1)
    assert "/2/" in report.result_file.name


def test_postgresql_restarted_mid_run_the_report_completes(worker, alice, notified, ledger):
    created = alice.create(title="Database restarted", **SLOW, **notified)
    rid = created["id"]
    alice.wait_processing(rid, min_progress=1, timeout=30)

    restart_postgres()
    connection.close()  # this test's own session was cut too

    reports = ledger.check([rid], timeout=120)
    report = reports[rid]
    assert report.status == "completed", report.error_message
    assert report.result_data["row_count"] == 200
    # The run met the outage and was retried (a new claim), never left processing.
    assert report.attempt >= 2 or report.retry_count >= 1
    assert worker.poll() is None
    after = alice.create(report_type="numbers", parameters={"count": 2}, **notified)
    assert ledger.check([rid, after["id"]], user=alice.user)[after["id"]].status == "completed"


def test_postgresql_restarted_during_post_processing_keeps_the_finished_file(
    fault_workers, fault_env, alice, notified, ledger, tmp_path, django_db_blocker
):
    """Before: post-processing failed after 3 retries 10 s apart and deleted the file."""
    marker = tmp_path / "restarted"
    workers = Workers(
        {
            **fault_env,
            "ASYNC_REPORTS_TEST_FAILPOINT": "restart-database-in-post-processing",
            "ASYNC_REPORTS_TEST_FAILPOINT_MARKER": str(marker),
        }
    )
    with django_db_blocker.unblock():
        fault_workers.stop()
        workers.use("faults-db-post-process", concurrency=2)
    ledger.also_watch(workers)
    try:
        created = alice.create(
            report_type="numbers", parameters={"count": 9}, compress=True, **notified
        )
        rid = created["id"]
        wait_for(
            lambda: marker.exists() and marker.read_text(),
            timeout=120,
            message="the worker to restart PostgreSQL",
        )
        wait_port("127.0.0.1", 5432, is_open=True, timeout=120)
        connection.close()  # this test's own session was cut too

        reports = ledger.check([rid], user=alice.user, timeout=120)
        report = reports[rid]
        assert report.status == "completed", report.error_message
        assert report.result_data["compressed"] is True
        assert report.attempt == 1  # the file was kept, never generated again
    finally:
        if not port_open("127.0.0.1", 5432):
            restart_postgres()
        with django_db_blocker.unblock():
            workers.stop()
