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

from django_async_reports.models import Report
from tests.faults.ledger import check_ledger
from tests.faults.services import broker_address, port_open, rabbitmq_stopped

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_reports_requested_while_the_broker_is_down_run_once_it_is_back(worker, alice, media_root):
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
