"""RabbitMQ stopped when reports are requested: accepted, pending, run once it is back.

Before: ``POST /reports/`` answered 503 and saved the report as failed. Now
the row is the outbox: the request answers 201 at once with the report
pending ("Waiting for the queue"), and the sweeper sends it once the broker
is back. The real broker's application is stopped (``rabbitmqctl stop_app``)
and started again whatever happens.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_async_reports.models import Report
from tests.e2e.conftest import Workers, wait_for
from tests.faults.conftest import FRESH_INSTALL
from tests.faults.ledger import check_ledger
from tests.faults.services import (
    broker_address,
    broker_memory_alarm,
    port_open,
    rabbitmq_stopped,
    wait_port,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_reports_requested_while_the_broker_is_down_run_once_it_is_back(
    worker, alice, media_root, settings
):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "REUSE_WINDOW_SECONDS": 3600}
    ids = []
    with rabbitmq_stopped():
        assert not port_open(*broker_address())
        for count in (3, 4, 5):
            started = time.monotonic()
            created = alice.create(report_type="numbers", parameters={"count": count})
            # Bounded: two connection attempts, never a hung request.
            assert time.monotonic() - started < 15
            assert (created["status"], created["progress_message"]) == (
                "pending",
                "Waiting for the queue",
            )
            ids.append(created["id"])
        # Never joined while waiting: an identical request is a report of its own.
        twin = alice.create(report_type="numbers", parameters={"count": 3})
        assert twin["outcome"] == "created" and twin["id"] not in ids
        ids.append(twin["id"])
        assert alice.progress(ids[0])["status"] == "pending"

    assert port_open(*broker_address())
    # The sweep beat runs every SWEEP_INTERVAL; here, at once, as if that time had passed.
    Report.objects.filter(pk__in=ids).update(next_step_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_reports")

    reports = check_ledger(ids, media_root, timeout=120)
    assert {r.status for r in reports.values()} == {"completed"}
    assert all(r.attempt == 1 for r in reports.values())  # each ran once
    assert worker.poll() is None  # the worker rode out the outage


def test_a_broker_memory_alarm_never_hangs_a_request_nor_loses_a_report(worker, alice, media_root):
    """Blocked publishers: without confirms the message "succeeds" and is lost, or hangs."""
    ids = []
    with broker_memory_alarm():
        for count in (2, 3):
            started = time.monotonic()
            created = alice.create(report_type="numbers", parameters={"count": count})
            # The confirm never comes: given up after PUBLISH_TIMEOUT (and one retry).
            assert time.monotonic() - started < 20
            assert created["status"] == "pending"
            ids.append(created["id"])
        waiting = Report.objects.filter(pk__in=ids, next_step="generate").count()
        assert waiting == len(ids)  # none counted as sent

    Report.objects.filter(pk__in=ids).update(next_step_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_reports")
    # A blocked message may still reach the queue once the alarm clears: it then
    # meets a report already claimed (or claims it first), never a second run.
    reports = check_ledger(ids, media_root, timeout=120)
    assert {(r.status, r.attempt) for r in reports.values()} == {("completed", 1)}
    assert worker.poll() is None


def test_the_broker_stopped_mid_run_the_report_completes_once(worker, alice, media_root):
    created = alice.create(report_type="paced", parameters={"count": 200, "delay": 0.02})
    rid = created["id"]
    alice.wait_processing(rid, min_progress=1, timeout=30)

    with rabbitmq_stopped():
        time.sleep(3)  # the worker notices: its run is cancelled, its message unacked

    # Redelivered once the broker is back (or swept, were it lost): one run's file.
    reports = check_ledger([rid], media_root, user=alice.user, timeout=120)
    assert reports[rid].status == "completed"
    assert reports[rid].result_data["row_count"] == 200
    assert worker.poll() is None


def test_the_broker_stopped_at_the_hand_off_to_post_processing(
    fault_workers, alice, media_root, tmp_path, django_db_blocker
):
    """Before: the hand-off's error failed the generated report and deleted its file."""
    marker = tmp_path / "stopped"
    env = {
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(FRESH_INSTALL),
        "ASYNC_REPORTS_TEST_FAILPOINT": "stop-broker-at-hand-off",
        "ASYNC_REPORTS_TEST_FAILPOINT_MARKER": str(marker),
    }
    workers = Workers(env)
    with django_db_blocker.unblock():
        fault_workers.stop()
        workers.use("faults-hand-off", concurrency=2)
    try:
        with rabbitmq_stopped(stop=False):  # the worker stops it; started again here
            created = alice.create(report_type="numbers", parameters={"count": 7})
            rid = created["id"]
            wait_for(marker.exists, timeout=60, message="the worker to stop the broker")
            wait_port(*broker_address(), is_open=False, timeout=60)
            time.sleep(2)  # the refused publish (or the run's cancel) happens meanwhile
            report = Report.objects.get(pk=rid)
            # Generated, not failed: the hand-off waits on the row.
            assert (report.status, report.next_step) == ("processing", "post_process")
            assert report.error_message == ""
        Report.objects.filter(pk=rid).update(next_step_at=timezone.now() - timedelta(minutes=5))
        call_command("sweep_reports")
        reports = check_ledger([rid], media_root, user=alice.user, timeout=120)
        assert reports[rid].status == "completed"
        assert reports[rid].result_data["row_count"] == 7
    finally:
        with django_db_blocker.unblock():
            workers.stop()
