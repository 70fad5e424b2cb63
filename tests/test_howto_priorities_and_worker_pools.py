"""docs/how-to/priorities-and-worker-pools.md: its worker command lines name the package's
queues and Celery's real options, its request is routed to the urgent queue, and a worker
started with the urgent pool's queue list consumes urgent reports and nothing else.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time

import pytest

from django_async_reports import services
from django_async_reports.conf import DEFAULTS, report_settings
from django_async_reports.models import Report
from django_async_reports.routing import route_for_priority
from tests.factories import UserFactory
from tests.helpers import ROOT
from tests.worker import celery_worker, purge_queues

PAGE = ROOT / "docs" / "how-to" / "priorities-and-worker-pools.md"
#: The queue names of the page (the defaults) -> the settings that hold them.
PAGE_QUEUES = {DEFAULTS["QUEUE"]: "QUEUE", DEFAULTS["HIGH_PRIORITY_QUEUE"]: "HIGH_PRIORITY_QUEUE"}


def worker_commands() -> list[list[str]]:
    """Every ``celery -A proj worker ...`` line of the page, split as a shell would."""
    lines = [
        line for line in PAGE.read_text().splitlines() if line.startswith("celery -A proj worker")
    ]
    return [shlex.split(line) for line in lines]


def option(command: list[str], *names: str) -> str:
    for name in names:
        if name in command:
            return command[command.index(name) + 1]
    raise AssertionError(f"{names} not in {command}")


def queues_of(command: list[str]) -> list[str]:
    return option(command, "-Q", "--queues").split(",")


def urgent_command() -> list[str]:
    [command] = [
        c for c in worker_commands() if option(c, "-n", "--hostname").startswith("urgent@")
    ]
    return command


@pytest.fixture(scope="module")
def worker_help() -> str:
    """``celery worker --help``, run once."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "worker", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_the_page_shows_the_general_and_the_urgent_pool():
    commands = worker_commands()
    assert len(commands) == 2
    general, urgent = commands
    assert sorted(queues_of(general)) == sorted(PAGE_QUEUES)
    assert queues_of(urgent) == [DEFAULTS["HIGH_PRIORITY_QUEUE"]]


def test_every_queue_named_is_one_the_package_routes_to():
    routed = {route_for_priority(p)["queue"] for p in ("urgent", "high", "normal", "low")}
    # Under test the queues carry a prefix: map the page's names to the settings' values.
    for command in worker_commands():
        for queue in queues_of(command):
            assert queue in PAGE_QUEUES, queue
            assert getattr(report_settings, PAGE_QUEUES[queue]) in routed


def test_every_option_is_one_of_celery_workers(worker_help):
    for command in worker_commands():
        assert command[:4] == ["celery", "-A", "proj", "worker"]
        flags = [word for word in command[4:] if word.startswith("-")]
        for flag in flags:
            assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s,]", worker_help), flag
    assert "--prefetch-multiplier" in urgent_command()
    assert int(option(urgent_command(), "--prefetch-multiplier")) == 1


@pytest.mark.django_db
def test_the_pages_urgent_request_is_routed_to_the_urgent_queue(auth_client):
    [body] = re.findall(r"-d '(\{.*?\})'", PAGE.read_text())
    response = auth_client.post("/api/v1/reports/", json.loads(body), format="json")

    assert response.status_code == 201, response.content
    report = Report.objects.get(pk=response.json()["id"])
    assert report.priority == "urgent"
    route = route_for_priority(report.priority)
    assert route["queue"] == report_settings.HIGH_PRIORITY_QUEUE
    assert route["priority"] == 9


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_urgent_pools_queues_runs_urgent_reports_only():
    """A real worker started with the urgent command's -Q (under the test's queue names)."""
    queues = ",".join(getattr(report_settings, PAGE_QUEUES[q]) for q in queues_of(urgent_command()))
    user = UserFactory(username="urgent-pool")
    purge_queues()
    try:
        with celery_worker(concurrency=1, name="howto-urgent", queues=queues):
            parameters = {"count": 2, "delay": 0.0, "text": ""}
            normal = services.request_report(
                user=user, report_type="numbers", parameters=parameters
            )
            urgent = services.request_report(
                user=user, report_type="numbers", parameters=parameters, priority="urgent"
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                urgent.refresh_from_db()
                if urgent.status in Report.FINISHED_STATUSES:
                    break
                time.sleep(0.2)
            normal.refresh_from_db()
            assert urgent.status == Report.Status.COMPLETED, urgent.error_message
            assert normal.status == Report.Status.PENDING  # its queue has no consumer here
    finally:
        purge_queues()
