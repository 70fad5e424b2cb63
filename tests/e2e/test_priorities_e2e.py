"""Priorities on a lone single-process worker: what waits in the queues starts in priority order.

The worker of this module is the only consumer of the test queues while it
runs (the shared worker is stopped first). It starts with concurrency 1 and
prefetch multiplier 1, acknowledging late, so while the blocker runs the
backlog waits in RabbitMQ, where the ``x-max-priority`` normal queue sorts it:
there the order is exact (highs, then normals, then lows, each in arrival
order), although normals and lows are sent interleaved and before the highs.

Urgent reports have a queue of their own, and prefetch decides how it competes:

* RabbitMQ 3.3-3.x (Celery then applies the prefetch count of 1 to the whole
  channel, "global QoS"): the blocker holds the only slot and both queues wait.
  Each time a message is acknowledged the broker lets one of the two waiting
  queues deliver, picking at random, so the urgent report may start after a
  few messages of the normal queue. Five highs put 15 messages (3 chain steps
  each, all at high priority) ahead of the first normal one: to start after a
  normal report the urgent one would have to lose 16 draws in a row, a chance
  of 1 in 65536.
* RabbitMQ 4 (per-consumer QoS): each queue's consumer may hold one message,
  so the urgent report is delivered while the blocker runs and starts next.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from kombu import Connection

from django_async_reports.conf import report_settings
from tests.e2e.conftest import parse_dt, task_result, wait_for
from tests.worker import queue_message_counts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: The name of the lone worker (conftest's ``lone_worker``) of this module.
LONE_WORKER = "priorities"


def per_consumer_qos() -> bool:
    """Whether the broker applies prefetch per consumer (RabbitMQ 4) rather than per channel."""
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.connect()
        return bool(conn.qos_semantics_matches_spec)


def test_urgent_and_high_reports_overtake_the_backlog(lone_worker, alice):
    def request(priority: str, title: str, **params):
        return alice.create(
            report_type="numbers",
            title=title,
            priority=priority,
            parameters={"count": 1, **params},
        )

    blocker = request("normal", "Blocker", count=200, delay=0.05)
    alice.wait_processing(blocker["id"], min_progress=0)

    normals, lows = [], []
    for i in range(3):
        normals.append(request("normal", f"Normal {i}"))
        lows.append(request("low", f"Low {i}"))
    highs = [request("high", f"High {i}") for i in range(5)]
    urgent = request("urgent", "Urgent")
    backlog = [*normals, *lows, *highs, urgent]

    # Everything waits in the broker behind the blocker.
    expected = {
        report_settings.QUEUE: len(normals) + len(lows) + len(highs),
        report_settings.HIGH_PRIORITY_QUEUE: 0 if per_consumer_qos() else 1,
    }
    wait_for(
        lambda: queue_message_counts() == expected, timeout=10, message=f"queues to hold {expected}"
    )
    for report in backlog:
        assert alice.progress(report["id"])["status"] == "pending", report["title"]

    # Free the worker.
    assert alice.post(f"{blocker['id']}/cancel/").status_code == 200
    for report in backlog:
        done = alice.wait_finished(report["id"], timeout=60)
        assert done["status"] == "completed", (report["title"], done["error_message"])
    blocker_result = task_result(blocker["celery_task_id"])
    wait_for(lambda: blocker_result.state == "SUCCESS", timeout=10, message="the blocker's end")
    assert blocker_result.result["status"] == "cancelled"

    started = {r["id"]: parse_dt(alice.detail(r["id"])["started_at"]) for r in backlog}
    assert None not in started.values()
    order = [r["title"] for r in sorted(backlog, key=lambda r: started[r["id"]])]

    def first(reports):
        return min(started[r["id"]] for r in reports)

    def last(reports):
        return max(started[r["id"]] for r in reports)

    assert started[urgent["id"]] < first(normals), order
    assert last(highs) < first(lows), order
    # The normal queue hands its messages out by priority, first in first out within one.
    by_priority = [r["title"] for r in (*highs, *normals, *lows)]
    assert [t for t in order if t != "Urgent"] == by_priority, order
