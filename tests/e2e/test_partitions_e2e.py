"""A partitioned report on a real two-process worker: parts on both, one file, cancel, a kill."""

from __future__ import annotations

import hashlib
import time

import pytest
from django.core.cache import cache

from django_async_reports.models import Report, ReportPart
from tests.e2e.conftest import stored_files, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# 4 parts of 100 rows, 20 ms a row: 2 s each, so both processes take some.
PARAMS = {"count": 400, "delay": 0.02, "text": "=sum(a1)"}


def digest(report_id: str) -> str:
    report = Report.objects.get(pk=report_id)
    with report.result_file.open("rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def part_state(report_id: str, lo: int) -> dict:
    return cache.get(f"part:{report_id}:{lo}") or {}


def test_parts_run_on_both_processes_and_join_into_the_one_run_file(worker, alice):
    whole = alice.create(report_type="partitioned_numbers", title="Numbers", parameters=PARAMS)
    assert alice.wait_finished(whole["id"], timeout=60)["status"] == "completed"
    split = alice.create(
        report_type="partitioned_numbers", title="Numbers", parameters={**PARAMS, "parts": 4}
    )
    done = alice.wait_finished(split["id"], timeout=60)

    assert done["status"] == "completed", done["error_message"]
    assert done["result_data"]["parts"] == 4
    assert done["result_data"]["row_count"] == 400
    assert digest(split["id"]) == digest(whole["id"])
    assert done["result_data"]["checksum"] == alice.detail(whole["id"])["result_data"]["checksum"]
    pids = {part_state(split["id"], lo)["pid"] for lo in (1, 101, 201, 301)}
    assert len(pids) == 2, pids  # both worker processes ran parts
    parts = ReportPart.objects.filter(report_id=split["id"])
    assert sorted(parts.values_list("status", "rows")) == [("done", 100)] * 4


def test_cancel_stops_every_part(worker, alice, media_root):
    slow = {**PARAMS, "count": 400, "delay": 0.05, "parts": 2}  # 10 s a part
    rid = alice.create(report_type="partitioned_numbers", title="Slow", parameters=slow)["id"]
    wait_for(
        lambda: part_state(rid, 1).get("row", 0) > 5 and part_state(rid, 201).get("row", 0) > 205,
        timeout=20,
        message="both parts running",
    )

    assert alice.post(f"{rid}/cancel/").status_code == 200
    time.sleep(2.5)  # CANCEL_CHECK_INTERVAL, and then some
    stopped = (part_state(rid, 1)["row"], part_state(rid, 201)["row"])
    time.sleep(1.0)
    assert (part_state(rid, 1)["row"], part_state(rid, 201)["row"]) == stopped
    assert stopped[0] < 200 and stopped[1] < 400
    assert alice.detail(rid)["status"] == "cancelled"
    assert stored_files(media_root, rid) == []


def test_a_killed_part_is_redelivered_alone(worker, alice):
    whole = alice.create(report_type="partitioned_numbers", title="Numbers", parameters=PARAMS)
    split = alice.create(
        report_type="partitioned_numbers",
        title="Numbers",
        parameters={**PARAMS, "parts": 4, "crash_at": 250},
    )
    done = alice.wait_finished(split["id"], timeout=90)
    alice.wait_finished(whole["id"], timeout=30)

    assert done["status"] == "completed", done["error_message"]
    assert digest(split["id"]) == digest(whole["id"])
    claims = dict(ReportPart.objects.filter(report_id=split["id"]).values_list("index", "claims"))
    assert claims == {0: 1, 1: 1, 2: 2, 3: 1}  # only the killed part ran again
    assert Report.objects.get(pk=split["id"]).attempt == 1
