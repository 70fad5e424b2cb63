"""Redis stopped: it is the progress cache and the Celery result backend, never a dependency.

Tried as a new user would, before: ``POST /reports/`` answered 201, then
``GET .../progress/`` answered 500 and the report never completed. Here the
real Redis server is shut down while a real worker (whose cache and result
backend are that Redis) runs reports requested over HTTP, and started again
afterwards whatever happens.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.conftest import stored_files
from tests.faults.services import port_open, redis_address, redis_stopped

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_reports_run_follow_cancel_and_download_with_redis_stopped(
    worker, alice, media_root, notified, ledger
):
    with redis_stopped():
        assert not port_open(*redis_address())

        created = alice.create(
            report_type="numbers", title="No Redis", parameters={"count": 40}, **notified
        )
        rid = created["id"]
        progress = alice.progress(rid)  # 200, from the row
        assert progress["status"] in ("pending", "processing", "completed")

        done = alice.wait_finished(rid, timeout=60)
        assert done["status"] == "completed", done["error_message"]
        assert alice.progress(rid)["progress"] == 100
        download = alice.get(f"{rid}/download/")
        assert download.status_code == 200
        rows = list(csv.reader(io.StringIO(download.text)))
        assert rows[0] == ["n", "square", "text"] and len(rows) == 41
        assert len(stored_files(media_root, rid)) == 1

        slow = alice.create(
            report_type="paced", parameters={"count": 600, "delay": 0.1}, **notified
        )
        running = alice.wait_processing(slow["id"], min_progress=1, timeout=30)
        assert running["message"].startswith("Processed ")  # progress moves, from the row
        assert alice.post(f"{slow['id']}/cancel/").status_code == 200
        assert alice.wait_finished(slow["id"], timeout=30)["status"] == "cancelled"
        assert stored_files(media_root, slow["id"]) == []

    # Back: the same worker goes on using the cache.
    assert port_open(*redis_address())
    after = alice.create(report_type="numbers", parameters={"count": 2}, **notified)
    reports = ledger.check([rid, slow["id"], after["id"]], user=alice.user, timeout=60)
    assert reports[after["id"]].status == "completed"
