"""The progress cache is a cache: with it unreachable, nothing a user does fails.

The cache here points at a closed port, so every call is refused at once, as
when Redis is stopped (tests/faults/ stops the real one). Reports are still
created, run, cancelled, followed and downloaded; progress comes from the row.
"""

from __future__ import annotations

import logging

import pytest
import redis
from django.core.cache import caches

from django_async_reports import progress, services, signals
from django_async_reports.models import Report
from tests.conftest import close_streamed_file

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
REFUSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REFUSED},
    }
    progress._last_cache_error_log = -progress._CACHE_ERROR_LOG_INTERVAL
    with pytest.raises(redis.exceptions.ConnectionError):  # the premise: it is unreachable
        caches["default"].get("anything")
    yield


def test_cache_helpers_log_and_carry_on(cache_down, caplog):
    with caplog.at_level(logging.WARNING, logger="django_async_reports.progress"):
        progress.write_cache("r1", progress=5)
        assert progress.read_cache("r1") is None
        progress.delete_cache("r1")
    # Logged once, not once per call: a run writes progress every second.
    assert caplog.text.count("The progress cache") == 1


def test_a_report_is_created_run_followed_cancelled_and_downloaded(
    cache_down, auth_client, django_capture_on_commit_callbacks, captured_dispatches
):
    with django_capture_on_commit_callbacks(execute=True):
        created = auth_client.post(
            URL, {"report_type": "numbers", "parameters": {"count": 3}}, format="json"
        )
    assert created.status_code == 201, created.content
    report_id = created.json()["id"]
    assert auth_client.get(f"{URL}{report_id}/progress/").json()["status"] == "pending"

    report = services.claim_report(report_id)
    assert report is not None
    services.generate(report)
    running = auth_client.get(f"{URL}{report_id}/progress/")
    assert running.status_code == 200
    # From the row: the cache had nothing to add.
    assert (running.json()["status"], running.json()["progress"]) == ("processing", 99)
    # The rates live in the cache only: unknown, never guessed.
    rates = [running.json()[k] for k in ("rows", "total", "rows_per_second", "eta_seconds")]
    assert rates == [None, None, None, None]
    assert services.post_process(report_id).status == Report.Status.COMPLETED
    assert services.notify_report(report_id) is True

    done = auth_client.get(f"{URL}{report_id}/progress/").json()
    assert (done["status"], done["progress"]) == ("completed", 100)
    assert (done["rows"], done["total"], done["eta_seconds"]) == (3, 3, 0)
    download = auth_client.get(f"{URL}{report_id}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).decode().splitlines()[0] == "n,square,text"
    close_streamed_file(download)

    with django_capture_on_commit_callbacks(execute=True):
        other = auth_client.post(
            URL, {"report_type": "numbers", "parameters": {"count": 4}}, format="json"
        ).json()
    cancelled = auth_client.post(f"{URL}{other['id']}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    assert Report.objects.get(pk=other["id"]).status == Report.Status.CANCELLED
    assert services.retry_report(Report.objects.get(pk=other["id"])).status == "pending"


class TestSignalReceiversThatRaise:
    """A receiver's error is logged; the event it reports stays done."""

    @pytest.fixture
    def broken_receiver(self):
        def receiver(sender, **kwargs):
            raise RuntimeError("receiver bug")

        connected = []

        def connect(signal):
            signal.connect(receiver, dispatch_uid="broken")
            connected.append(signal)

        yield connect
        for signal in connected:
            signal.disconnect(dispatch_uid="broken")

    def test_a_failing_report_started_receiver_keeps_the_claim(self, broken_receiver, user, caplog):
        broken_receiver(signals.report_started)
        report = services.request_report(user=user, report_type="numbers", parameters={})
        claimed = services.claim_report(report.pk)
        assert claimed is not None and claimed.status == Report.Status.PROCESSING
        assert "Receiver" in caplog.text and "report_started" in caplog.text

    def test_a_failing_report_requested_receiver_keeps_the_201(
        self, broken_receiver, auth_client, captured_dispatches, django_capture_on_commit_callbacks
    ):
        broken_receiver(signals.report_requested)
        with django_capture_on_commit_callbacks(execute=True):
            response = auth_client.post(
                URL, {"report_type": "numbers", "parameters": {}}, format="json"
            )
        assert response.status_code == 201
        assert len(captured_dispatches) == 1

    def test_a_failing_report_cancelled_receiver_keeps_the_cancel(
        self, broken_receiver, user, captured_dispatches
    ):
        broken_receiver(signals.report_cancelled)
        report = services.request_report(user=user, report_type="numbers", parameters={})
        assert services.cancel_report(report).status == Report.Status.CANCELLED
