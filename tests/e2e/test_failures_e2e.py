"""Retries, permanent failure, timeout and a killed worker process, on a real worker."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import cache

from django_async_reports.exceptions import SERVICE_UNREACHABLE
from tests.e2e.conftest import parse_dt, stored_files, task_result, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_transient_failure_is_retried_and_completes(worker, alice):
    key = uuid.uuid4().hex
    rid = alice.create(report_type="flaky", parameters={"key": key, "failures": 1})["id"]

    done = alice.wait_finished(rid)

    assert done["status"] == "completed", done["error_message"]
    assert done["retry_count"] == 1
    assert done["error_message"] == ""  # the failed attempt's error no longer applies
    assert done["result_data"]["row_count"] == 1
    assert cache.get(f"flaky:{key}") == 2  # two runs: the failed one and the retry
    assert alice.get(f"{rid}/download/").content == b"attempt\r\n2\r\n"


def test_persistent_failure_fails_after_max_retries(worker, alice, media_root, mailbox):
    created = alice.create(report_type="broken", title="Never works", send_email=True)
    rid = created["id"]

    done = alice.wait_finished(rid)

    assert done["status"] == "failed"
    assert done["retry_count"] == 3
    assert done["error_message"].startswith(SERVICE_UNREACHABLE + " Reference: ")
    assert "data source" not in done["error_message"]
    assert done["progress_message"] == "Failed"
    assert done["completed_at"] is not None
    assert done["result_data"] == {}
    progress = alice.progress(rid)
    assert (progress["status"], progress["message"]) == ("failed", "Failed")
    assert alice.get(f"{rid}/download/").status_code == 404
    assert stored_files(media_root, rid) == []
    # Each retry is a message with the report's task id: the earlier attempts'
    # results ("retrying") are replaced by the last one's failure. A fresh
    # AsyncResult per poll, since one caches the first finished state it reads.
    wait_for(
        lambda: task_result(created["celery_task_id"]).state == "FAILURE",
        timeout=10,
        message="the task's failure",
    )
    assert isinstance(task_result(created["celery_task_id"]).result, ConnectionError)
    # One failure e-mail, however many attempts there were.
    wait_for(lambda: mailbox.messages(), timeout=10, message="the failure e-mail")
    time.sleep(0.5)
    messages = mailbox.messages()
    assert [(m["To"], m["Subject"]) for m in messages] == [
        ("alice@example.com", 'Your report "Never works" failed')
    ]
    assert f"Error: {done['error_message']}" in messages[0].get_content()


def test_soft_time_limit_fails_with_timeout(worker, alice, media_root):
    rid = alice.create(report_type="sleepy", title="Slow source")["id"]

    done = alice.wait_finished(rid, timeout=20)

    assert done["status"] == "failed"
    assert done["error_message"] == "Timeout"
    assert done["retry_count"] == 0
    # Stopped by the 1-second soft limit, long before its 10-second sleep ended.
    elapsed = (parse_dt(done["completed_at"]) - parse_dt(done["started_at"])).total_seconds()
    assert 0.5 <= elapsed < 8, elapsed
    assert alice.get(f"{rid}/download/").status_code == 404
    assert stored_files(media_root, rid) == []


def test_killed_worker_process_is_redelivered_and_completes(worker, workers, alice):
    key = uuid.uuid4().hex
    rid = alice.create(report_type="crash_once", title="Survivor", parameters={"key": key})["id"]

    done = alice.wait_finished(rid, timeout=45)

    assert done["status"] == "completed", done["error_message"]
    assert alice.get(f"{rid}/download/").content == b"survived\r\nyes\r\n"
    assert done["result_data"]["row_count"] == 1
    assert cache.get(f"crash:{key}") == 1  # the first run did start, and killed itself
    assert worker.poll() is None  # only the child died; the worker goes on
    log = workers.log_path.read_text(errors="replace")
    assert "SIGKILL" in log or "WorkerLostError" in log
