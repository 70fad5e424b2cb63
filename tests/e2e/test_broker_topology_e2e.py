"""The broker topology on real workers: a queue recreated with other arguments, quorum
queues, and a channel the broker closes with 406 (what ``consumer_timeout`` does).

Each test stops the shared worker first and runs its own, alone on its queues.
"""

from __future__ import annotations

import json
import time

import pytest
from celery import Celery, current_app
from django.conf import settings
from django.test import override_settings

from django_async_reports import routing, services
from django_async_reports.celery_config import configure_celery
from django_async_reports.conf import report_settings
from django_async_reports.models import Report
from tests.broker_admin import declare_raw, delete_queues, queue_info, vhost
from tests.e2e.conftest import wait_for
from tests.factories import UserFactory
from tests.worker import celery_worker, purge_queues, worker_log_path

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MISMATCH = "exists on the broker with other arguments than django-async-reports declares"


@pytest.fixture
def alone(workers, django_db_blocker):
    """The shared worker is stopped: this test's worker is the only consumer.

    The test queues are emptied before and after (a worker that stopped leaves its
    messages behind)."""
    with django_db_blocker.unblock():
        workers.stop()
    purge_queues()
    yield workers
    with django_db_blocker.unblock():
        workers.stop()
    purge_queues()


def test_a_queue_recreated_with_a_dead_letter_argument_is_used_as_it_is(alone, alice):
    """The worker starts, logs one clear error, and reports run end to end."""
    queue = report_settings.QUEUE
    dlx = f"{settings.QUEUE_PREFIX}_dlx"
    delete_queues(queue)
    # What an operator's script does: the queue again, with an argument of its own.
    declare_raw(
        queue, {"x-queue-type": "classic", "x-max-priority": 10, "x-dead-letter-exchange": dlx}
    )
    try:
        proc = alone.use("recreated-queue", concurrency=1)
        report = alice.create(report_type="numbers", parameters={"count": 3})
        assert alice.wait_finished(report["id"], timeout=20)["status"] == "completed"

        assert proc.poll() is None  # no "Unrecoverable error": the worker is still consuming
        # One error per process: the worker's at start, and its pool process's when that
        # one publishes the next step on a connection of its own.
        lines = [line for line in alone.log_path.read_text().splitlines() if MISMATCH in line]
        assert [line.split("] ")[0].split(": ")[-1] for line in lines] == [
            "ERROR/MainProcess",
            "ERROR/ForkPoolWorker-1",
        ]
        assert f"Queue {queue!r} {MISMATCH}: 'x-dead-letter-exchange' differs" in lines[0]
        assert queue_info(queue)["arguments"]["x-dead-letter-exchange"] == dlx
    finally:
        alone.stop()
        delete_queues(queue)  # the next worker's start declares it again, as it should be


def test_quorum_queues_run_a_report_end_to_end(alone, transactional_db):
    """QUEUE_TYPE="quorum", in a vhost of its own (quorum queues cannot share a name with
    the classic test queues, and Celery declares its delayed-delivery queues for them)."""
    overrides = {"QUEUE_TYPE": "quorum"}
    user = UserFactory(username="quinn")
    name = f"{settings.QUEUE_PREFIX}_quorum"
    with (
        vhost(name) as url,
        override_settings(
            CELERY_BROKER_URL=url, ASYNC_REPORTS={**settings.ASYNC_REPORTS, **overrides}
        ),
    ):
        web = Celery("quorum-web", set_as_current=False)
        web.config_from_object("django.conf:settings", namespace="CELERY")
        configure_celery(web)
        env = {
            "ASYNC_REPORTS_TEST_BROKER_URL": url,
            "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(overrides),
        }
        with celery_worker(name="quorum", concurrency=1, env=env):
            previous = current_app._get_current_object()
            web.set_current()  # this thread publishes with the quorum app
            try:
                report = services.request_report(
                    user=user, report_type="numbers", parameters={"count": 5}
                )
            finally:
                previous.set_current()
            wait_for(
                lambda: Report.objects.get(pk=report.pk).status in ("completed", "failed"),
                timeout=20,
                message="the quorum report to finish",
            )
        report.refresh_from_db()
        assert report.status == "completed", report.error_message
        assert report.result_data["row_count"] == 5
        for queue in (report_settings.QUEUE, report_settings.HIGH_PRIORITY_QUEUE):
            info = queue_info(queue, name)
            assert info["type"] == "quorum"
            assert info["arguments"] == {"x-queue-type": "quorum"}
        web.close()


def break_the_consumer_channel() -> None:
    routing.send_task("tests.break_consumer_channel", [], priority="normal")


def test_a_channel_closed_with_406_reconnects_instead_of_stopping_the_worker(alone, alice):
    """configure_celery turns broker_channel_error_retry on: the worker survives the 406."""
    with celery_worker(name="channel-406", concurrency=1, extra_args=("-P", "solo")) as proc:
        log_path = worker_log_path("channel-406")
        break_the_consumer_channel()
        wait_for(
            lambda: "PRECONDITION_FAILED - unknown delivery tag" in log_path.read_text(),
            timeout=15,
            message="the broker to close the channel",
        )
        report = alice.create(report_type="numbers", parameters={"count": 2})
        assert alice.wait_finished(report["id"], timeout=20)["status"] == "completed"
        assert proc.poll() is None
        log = log_path.read_text()
        assert "Unrecoverable error" not in log
        assert "Connection to broker lost" in log


def test_without_it_the_same_406_stops_the_worker(alone):
    """Celery's default (broker_channel_error_retry False), which the package changes."""
    env = {"ASYNC_REPORTS_TEST_CELERY_OVERRIDES": json.dumps({"broker_channel_error_retry": False})}
    with celery_worker(
        name="channel-406-default", concurrency=1, extra_args=("-P", "solo"), env=env
    ) as proc:
        break_the_consumer_channel()
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        log = worker_log_path("channel-406-default").read_text()
        assert proc.poll() is not None, log[-3000:]
        assert "Unrecoverable error: PreconditionFailed" in log
