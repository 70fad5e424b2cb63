"""Fair use as an attacker would test it: concurrent requests against a live server, a flood.

Requests are sent at the same moment from threads (a barrier releases them
together) to pytest-django's live server, over HTTP with Bearer tokens. The
caps are checked and taken under a per-user lock in PostgreSQL, and the
throttles count with Redis' atomic INCR, so none lets more through than it
allows. The flood runs on a real worker.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from django_async_reports.models import Report, ReportSchedule
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NO_THROTTLE = {"THROTTLE_RATES": None}


def at_once(count: int, send) -> list:
    """Call ``send()`` from ``count`` threads released together; their answers."""
    barrier = threading.Barrier(count)
    answers: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = send()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def configure(settings, **values):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **values}


def test_concurrent_requests_never_pass_the_active_report_cap(alice, settings, captured_dispatches):
    configure(settings, MAX_ACTIVE_REPORTS_PER_USER=3, **NO_THROTTLE)

    answers = at_once(12, lambda: alice.post(json={"report_type": "numbers", "force": True}))

    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 3 + [429] * 9
    assert all(a.headers["Retry-After"] == "30" for a in answers if a.status_code == 429)
    assert Report.objects.filter(user=alice.user).count() == 3


def test_concurrent_requests_never_pass_the_rate(alice, settings, captured_dispatches):
    configure(settings, MAX_ACTIVE_REPORTS_PER_USER=None, THROTTLE_RATES={"create": "5/minute"})

    answers = at_once(15, lambda: alice.post(json={"report_type": "numbers", "force": True}))

    assert sorted(a.status_code for a in answers) == [201] * 5 + [429] * 10
    assert Report.objects.filter(user=alice.user).count() == 5


def test_concurrent_schedules_never_pass_the_schedule_cap(alice, settings):
    configure(settings, MAX_SCHEDULES_PER_USER=2)
    payload = {"report_type": "numbers", "frequency": "daily", "parameters": {"count": 1}}

    answers = at_once(8, lambda: alice.post("schedules/", json=payload))

    assert sorted(a.status_code for a in answers) == [201] * 2 + [429] * 6
    assert ReportSchedule.objects.filter(owner=alice.user).count() == 2


# -- a flood of urgent reports on a real worker ---------------------------------------------
FAIR = {"MAX_RUNNING_PER_USER": 1}


@pytest.fixture(scope="module")
def fair_worker(workers, django_db_blocker):
    """A two-process worker on which each user has one running place."""
    saved = workers.env
    workers.env = {**saved, "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(FAIR)}
    try:
        with django_db_blocker.unblock():
            yield workers.use("fair", concurrency=2)
    finally:
        workers.env = saved
        with django_db_blocker.unblock():
            workers.stop()


def test_a_flood_of_urgent_reports_keeps_no_other_users_urgent_report_waiting(
    fair_worker, alice, bob, settings
):
    """Without a running place per user, bob's report would wait behind alice's ten."""
    configure(settings, **FAIR)
    slow = {"report_type": "paced", "parameters": {"count": 500, "delay": 0.02}}  # ~10 s each
    flood = [alice.create(priority="urgent", **slow)["id"] for _ in range(10)]
    wait_for(
        lambda: Report.objects.filter(pk__in=flood, status="processing").exists(),
        timeout=30,
        message="alice's first report to run",
    )

    asked = time.monotonic()
    bobs = bob.create(report_type="numbers", priority="urgent", parameters={"count": 3})
    done = bob.wait_finished(bobs["id"], timeout=30)
    assert done["status"] == "completed"
    assert time.monotonic() - asked < 30

    # Alice never held both worker processes: her others wait for a place.
    assert Report.objects.filter(pk__in=flood, status="processing").count() <= 1
    waiting = Report.objects.filter(pk__in=flood, status="pending")
    assert waiting.count() >= 8
    assert all(r.progress_message.startswith("Waiting") for r in waiting if r.next_step)
    for rid in flood:
        alice.post(f"{rid}/cancel/")
