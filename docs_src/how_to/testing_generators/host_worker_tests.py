"""A host project's end-to-end test: a report requested over the API, built by a real worker.

docs/how-to/testing-generators.md shows it; tests/test_testing_helper.py runs this file
with pytest in a subprocess, as a host's test run would, against the real RabbitMQ.
"""

# --8<-- [start:worker]
import datetime
import time

import pytest
from celery import current_app
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from django_async_reports.conf import report_settings

DECEMBER = {"start_date": "2024-12-01", "end_date": "2024-12-31"}


@pytest.fixture
def report_worker(transactional_db):
    """A real Celery worker on your broker, in a thread of the test process.

    It consumes the report queues of your settings with your project's Celery app, and
    reads the test database: the test must commit what it writes (transactional_db).
    """
    queues = [report_settings.QUEUE, report_settings.HIGH_PRIORITY_QUEUE]
    with start_worker(
        current_app._get_current_object(),  # your project's app, loaded by its settings
        pool="solo",
        queues=queues,
        perform_ping_check=False,
        shutdown_timeout=30,
    ):
        yield


def test_a_worker_builds_the_report_requested_over_the_api(report_worker):
    alice = get_user_model().objects.create_user(
        "alice",
        email="alice@example.com",
        date_joined=datetime.datetime(2024, 12, 3, 12, tzinfo=datetime.timezone.utc),
    )
    client = APIClient()
    client.force_authenticate(alice)

    created = client.post(
        reverse("django_async_reports:report-list"),
        {"report_type": "signups", "parameters": DECEMBER},
        format="json",
    )
    assert created.status_code == 201, created.json()

    report_id = created.json()["id"]
    progress_url = reverse("django_async_reports:report-progress", args=[report_id])
    deadline = time.monotonic() + 60
    while (progress := client.get(progress_url).json())["status"] != "completed":
        assert progress["status"] in {"pending", "processing"}, progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.2)

    download = client.get(reverse("django_async_reports:report-download", args=[report_id]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content).decode("utf-8-sig").splitlines() == [
        "username,email,joined",
        "alice,alice@example.com,2024-12-03",
    ]


# --8<-- [end:worker]
