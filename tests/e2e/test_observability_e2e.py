"""What operators watch, on a real worker: Celery task events (Flower) and the progress rates."""

from __future__ import annotations

import contextlib
import time

import pytest

from tests.e2e.conftest import celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: The events Flower shows for a task that ran and succeeded.
TASK_EVENTS = ["task-sent", "task-received", "task-started", "task-succeeded"]


def test_a_reports_task_events_reach_an_event_receiver(worker, alice):
    """Flower is an event receiver: one on the same broker sees the report's generate task."""
    received: list[dict] = []
    with celery_app.connection_for_read() as conn:
        receiver = celery_app.events.Receiver(conn, handlers={"*": received.append})
        # The receiver's queue is declared and consumed before the report is requested.
        with receiver.consumer_context() as (connection, _channel, _consumers):
            created = alice.create(report_type="numbers", parameters={"count": 3})
            task_id = created["celery_task_id"]

            def of_the_task():
                return [e["type"] for e in received if e.get("uuid") == task_id]

            deadline = time.monotonic() + 30
            while set(of_the_task()) != set(TASK_EVENTS) and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):  # socket.timeout: nothing came
                    connection.drain_events(timeout=0.5)
    # Each once. Not in order: the publisher sends task-sent after the message
    # itself, and a fast worker's task-received may reach the broker first.
    assert sorted(of_the_task()) == sorted(TASK_EVENTS), [e["type"] for e in received]
    sent = next(e for e in received if e.get("uuid") == task_id and e["type"] == "task-sent")
    assert sent["name"] == "django_async_reports.generate_report"
    assert alice.wait_finished(created["id"])["status"] == "completed"


def test_progress_carries_rows_rate_and_time_left_while_running(worker, alice):
    created = alice.create(report_type="numbers", parameters={"count": 40, "delay": 0.05})
    running = alice.wait_processing(created["id"], min_progress=10)
    assert running["total"] == 40
    assert 0 < running["rows"] < 40
    assert running["rows_per_second"] > 0
    assert running["eta_seconds"] is not None and running["eta_seconds"] >= 0

    assert alice.wait_finished(created["id"])["status"] == "completed"
    done = alice.progress(created["id"])
    assert (done["rows"], done["total"], done["eta_seconds"]) == (40, 40, 0)
    assert done["rows_per_second"] > 0
