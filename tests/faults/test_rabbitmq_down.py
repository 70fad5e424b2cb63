"""RabbitMQ stopped when reports are requested: accepted, pending, run once it is back.

Before: ``POST /reports/`` answered 503 and saved the report as failed. Now
the row is the outbox: the request answers 201 at once with the report
pending ("Waiting for the queue"), and the sweeper sends it once the broker
is back. The real broker's application is stopped (``rabbitmqctl stop_app``)
and started again whatever happens.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_async_reports import services
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.e2e.conftest import Workers, wait_for
from tests.faults.services import (
    broker_address,
    broker_memory_alarm,
    port_open,
    rabbitmq_stopped,
    wait_port,
)
from tests.worker import queue_message_counts

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_reports_requested_while_the_broker_is_down_run_once_it_is_back(
    worker, alice, notified, ledger, settings
):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "REUSE_WINDOW_SECONDS": 3600}
    ids = []
    with rabbitmq_stopped():
        assert not port_open(*broker_address())
        for count in (3, 4, 5):
            started = time.monotonic()
            created = alice.create(report_type="numbers", parameters={"count": count}, **notified)
            # Bounded: two connection attempts, never a hung request.
            assert time.monotonic() - started < 15
            assert (created["status"], created["progress_message"]) == (
                "pending",
                "Waiting for the queue",
            )
            ids.append(created["id"])
        # Never joined while waiting: an identical request is a report of its own.
        twin = alice.create(report_type="numbers", parameters={"count": 3}, **notified)
        assert twin["outcome"] == "created" and twin["id"] not in ids
        ids.append(twin["id"])
        assert alice.progress(ids[0])["status"] == "pending"

    assert port_open(*broker_address())
    # The sweep beat runs every SWEEP_INTERVAL; here, at once, as if that time had passed.
    Report.objects.filter(pk__in=ids).update(next_step_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_reports")

    reports = ledger.check(ids, user=alice.user, timeout=120)
    assert {r.status for r in reports.values()} == {"completed"}
    assert all(r.attempt == 1 for r in reports.values())  # each ran once
    assert worker.poll() is None  # the worker rode out the outage


def test_a_broker_memory_alarm_never_hangs_a_request_nor_loses_a_report(
    worker, alice, notified, ledger
):
    """Blocked publishers: without confirms the message "succeeds" and is lost, or hangs."""
    ids = []
    with broker_memory_alarm():
        for count in (2, 3):
            started = time.monotonic()
            created = alice.create(report_type="numbers", parameters={"count": count}, **notified)
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
    reports = ledger.check(ids, user=alice.user, timeout=120)
    assert {(r.status, r.attempt) for r in reports.values()} == {("completed", 1)}
    assert worker.poll() is None


def test_the_broker_stopped_mid_run_the_report_completes_once(worker, alice, notified, ledger):
    created = alice.create(
        report_type="paced", parameters={"count": 200, "delay": 0.02}, **notified
    )
    rid = created["id"]
    alice.wait_processing(rid, min_progress=1, timeout=30)

    with rabbitmq_stopped():
        time.sleep(3)  # the worker notices: its run is cancelled, its message unacked

    # Redelivered once the broker is back (or swept, were it lost): one run's file.
    reports = ledger.check([rid], user=alice.user, timeout=120)
    assert reports[rid].status == "completed"
    assert reports[rid].result_data["row_count"] == 200
    assert worker.poll() is None


def test_the_broker_stopped_at_the_hand_off_to_post_processing(
    fault_workers, fault_env, alice, notified, ledger, tmp_path, django_db_blocker
):
    """Before: the hand-off's error failed the generated report and deleted its file."""
    marker = tmp_path / "stopped"
    env = {
        **fault_env,
        "ASYNC_REPORTS_TEST_FAILPOINT": "stop-broker-at-hand-off",
        "ASYNC_REPORTS_TEST_FAILPOINT_MARKER": str(marker),
    }
    workers = Workers(env)
    with django_db_blocker.unblock():
        fault_workers.stop()
        workers.use("faults-hand-off", concurrency=2)
    ledger.also_watch(workers)
    try:
        with rabbitmq_stopped(stop=False):  # the worker stops it; started again here
            created = alice.create(report_type="numbers", parameters={"count": 7}, **notified)
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
        reports = ledger.check([rid], user=alice.user, timeout=120)
        assert reports[rid].status == "completed"
        assert reports[rid].result_data["row_count"] == 7
    finally:
        with django_db_blocker.unblock():
            workers.stop()


def test_a_backlog_survives_the_broker_stopped_and_each_report_runs_once(
    fault_workers, alice, notified, ledger, django_db_blocker
):
    """Messages queued when the broker stops are on disk (durable queues, persistent
    messages, confirmed); reports requested while it is down wait in their rows."""
    with django_db_blocker.unblock():
        fault_workers.stop()  # nobody consumes: the messages pile up in the queue
    before = sum(queue_message_counts().values())
    queued = [
        alice.create(report_type="numbers", parameters={"count": n}, **notified)["id"]
        for n in range(1, 21)
    ]
    assert Report.objects.filter(pk__in=queued, next_step="").count() == 20  # all confirmed
    assert sum(queue_message_counts().values()) == before + 20

    with rabbitmq_stopped():
        waiting = [
            alice.create(report_type="numbers", parameters={"count": 100 + n}, **notified)["id"]
            for n in range(3)
        ]
    # The backlog came back with the broker.
    assert sum(queue_message_counts().values()) == before + 20

    with django_db_blocker.unblock():
        fault_workers.use("faults-backlog", concurrency=2, purge=False)
    Report.objects.filter(pk__in=waiting).update(next_step_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_reports")

    reports = ledger.check(queued + waiting, user=alice.user, timeout=180)
    assert {(r.status, r.attempt) for r in reports.values()} == {("completed", 1)}
    assert sorted(r.result_data["row_count"] for r in reports.values()) == [
        *range(1, 21),
        100,
        101,
        102,
    ]


def test_regenerate_retry_and_run_now_with_the_broker_down_wait_and_run_once(
    worker, alice, notified, ledger
):
    """The other entry points that publish: the API's regenerate and run-now, the admin's retry."""
    done = alice.create(report_type="numbers", parameters={"count": 4}, **notified)
    slow = alice.create(report_type="paced", parameters={"count": 600, "delay": 0.05})
    alice.wait_processing(slow["id"], timeout=30)
    assert alice.post(f"{slow['id']}/cancel/").status_code == 200
    cancelled = alice.wait_finished(slow["id"])
    assert cancelled["status"] == "cancelled"
    assert alice.wait_finished(done["id"])["status"] == "completed"
    schedule = ReportSchedule.objects.create(
        owner=alice.user,
        report_type="numbers",
        parameters={"count": 8},
        title="Weekly numbers",
        frequency="weekly",
        weekday=0,
        send_email=True,
        email_recipients=[alice.user.email],
        webhook_url=notified["webhook_url"],
    )

    with rabbitmq_stopped():
        started = time.monotonic()
        regenerated = alice.post(f"{done['id']}/regenerate/")
        assert regenerated.status_code == 201, regenerated.text
        run = alice.post(f"schedules/{schedule.pk}/run-now/")
        assert run.status_code == 201, run.text
        # The admin's "Retry" action calls this service function.
        retried = services.retry_report(Report.objects.get(pk=slow["id"]))
        assert time.monotonic() - started < 45  # three requests, each bounded
        scheduled = run.json()
        assert (scheduled["status"], scheduled["report_status"]) == ("running", "pending")
        waiting = [regenerated.json()["id"], scheduled["report_id"], str(retried.pk)]
        for report in Report.objects.filter(pk__in=waiting):
            assert (report.status, report.next_step) == ("pending", "generate")
            assert report.progress_message == "Waiting for the queue"

    Report.objects.filter(pk__in=waiting).update(next_step_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_reports")

    ids = [done["id"], *waiting]  # the retried report is the cancelled one, run again
    reports = ledger.check(ids, user=alice.user, timeout=120)
    assert {r.status for r in reports.values()} == {"completed"}
    assert reports[str(retried.pk)].attempt == 2  # the cancelled run, then the retry
    execution = ScheduleExecution.objects.get(schedule=schedule)
    assert (execution.status, execution.email_status, execution.webhook_status) == (
        "completed",
        "sent",
        "sent",
    )
