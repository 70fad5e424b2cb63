"""Cancelling over HTTP: a running report stops on the worker, a pending one never starts."""

from __future__ import annotations

import time

import pytest

from django_async_reports.models import Report
from tests.e2e.conftest import parse_dt, stored_files, task_result, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SLOW = {"count": 200, "delay": 0.05}  # 10 s of rows, one row per chunk


def wait_task_done(task_id: str, timeout: float):
    """Until the worker recorded the task's return value; the value."""
    result = task_result(task_id)
    wait_for(
        lambda: result.state == "SUCCESS",
        timeout=timeout,
        interval=0.05,
        message=f"task {task_id} to return (state {result.state})",
    )
    return result.result


def test_cancel_running_report_stops_the_worker(worker, alice, media_root):
    created = alice.create(report_type="numbers", title="Too long", parameters=SLOW)
    rid = created["id"]
    alice.wait_processing(rid, min_progress=2)

    response = alice.post(f"{rid}/cancel/")
    cancelled_at = time.monotonic()

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Report cancelled.", "status": "cancelled"}
    # The running task notices within a few seconds and returns without a file.
    returned = wait_task_done(created["celery_task_id"], timeout=5)
    assert returned == {"report_id": rid, "status": "cancelled"}
    assert time.monotonic() - cancelled_at < 5

    first = alice.progress(rid)
    assert first["status"] == "cancelled"
    assert first["message"] == "Cancelled"
    assert 0 < first["progress"] < 100
    assert parse_dt(first["completed_at"]) is not None
    for _ in range(5):  # it does not move any more
        time.sleep(0.2)
        later = alice.progress(rid)
        assert (later["status"], later["progress"]) == ("cancelled", first["progress"])

    detail = alice.detail(rid)
    assert detail["status"] == "cancelled"
    assert detail["result_data"] == {}  # no row count: the rows never completed
    assert detail["download_url"] is None
    row = Report.objects.get(pk=rid)
    assert row.result_file.name == ""
    assert row.progress < 100
    assert stored_files(media_root, rid) == []
    assert alice.get(f"{rid}/download/").status_code == 404

    again = alice.post(f"{rid}/cancel/")
    assert again.status_code == 409
    assert again.json()["status"] == "cancelled"


def test_cancel_pending_report_is_immediate_and_it_never_runs(worker, alice, media_root):
    # Occupy both worker processes (and its prefetch of two messages).
    blockers = [
        alice.create(report_type="numbers", title=f"Blocker {i}", parameters=SLOW) for i in range(2)
    ]
    for blocker in blockers:
        alice.wait_processing(blocker["id"], min_progress=0)
    waiting = alice.create(report_type="numbers", title="Waiting", parameters={"count": 3})
    rid = waiting["id"]
    time.sleep(0.3)
    assert alice.progress(rid)["status"] == "pending"

    response = alice.post(f"{rid}/cancel/")

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Report cancelled.", "status": "cancelled"}
    progress = alice.progress(rid)
    assert (progress["status"], progress["message"]) == ("cancelled", "Cancelled")
    assert progress["started_at"] is None
    assert progress["completed_at"] is not None

    # Free the worker: the cancelled report's message is delivered and skipped.
    for blocker in blockers:
        assert alice.post(f"{blocker['id']}/cancel/").status_code == 200
    for blocker in blockers:
        assert wait_task_done(blocker["celery_task_id"], timeout=5)["status"] == "cancelled"
    returned = wait_task_done(waiting["celery_task_id"], timeout=10)
    assert returned == {"report_id": rid, "status": "skipped"}

    detail = alice.detail(rid)
    assert detail["status"] == "cancelled"
    assert detail["started_at"] is None
    assert detail["progress"] == 0
    assert detail["result_data"] == {}
    assert stored_files(media_root, rid) == []
    assert alice.get(f"{rid}/download/").status_code == 404
