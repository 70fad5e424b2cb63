"""A poison report, one that kills its worker process every time, fails for good.

RabbitMQ's classic queues count no deliveries: a message whose worker process
dies comes back redelivered, runs, kills its worker again, forever. The report
counts the lost workers and fails at ``MAX_WORKER_LOSSES`` (3) with a reason a
user can read; the worker itself lives on and runs the next report.
"""

from __future__ import annotations

import pytest

from django_async_reports.models import Report

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_a_report_that_kills_its_worker_every_time_fails_after_three_losses(
    worker, alice, notified, ledger
):
    created = alice.create(report_type="crash_always", title="Poison", **notified)

    done = alice.wait_finished(created["id"], timeout=120)

    assert done["status"] == "failed"
    assert done["error_message"].startswith("The worker running this report was lost 3 times")
    row = Report.objects.get(pk=created["id"])
    assert (row.worker_losses, row.attempt) == (2, 3)  # three runs, the third loss fails it
    assert worker.poll() is None  # the worker process itself survived
    after = alice.create(report_type="numbers", parameters={"count": 3}, **notified)
    reports = ledger.check([created["id"], after["id"]], user=alice.user, killed=True)
    assert reports[after["id"]].status == "completed"
