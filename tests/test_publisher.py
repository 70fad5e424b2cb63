"""The publishing connection: one per thread and process, dropped when a publish fails."""

from __future__ import annotations

import threading

import pytest

from django_async_reports import publisher, routing
from tests.celery_app import app


@pytest.fixture(autouse=True)
def no_connection_left():
    publisher.drop()
    yield
    publisher.drop()


def test_one_connection_per_thread_with_timeouts():
    first = publisher.connection(app, 2.5)
    assert publisher.connection(app, 2.5) is first
    assert first.transport_options["read_timeout"] == 2.5
    assert first.transport_options["write_timeout"] == 2.5
    assert first.transport_options["confirm_publish"] is True  # the app's, kept
    other = []
    thread = threading.Thread(target=lambda: other.append(publisher.connection(app, 2.5)))
    thread.start()
    thread.join()
    assert other[0] is not first


def test_a_failed_publish_is_tried_once_more_on_a_fresh_connection(monkeypatch, db):
    seen = []

    def flaky(self, args=None, connection=None, **options):
        seen.append(connection)
        if len(seen) == 1:
            raise ConnectionResetError("stale connection")

    monkeypatch.setattr("celery.app.task.Task.apply_async", flaky)
    routing.send_task(routing.SEND_REPORT_NOTIFICATION, ["x"], priority="normal")
    assert len(seen) == 2 and seen[0] is not seen[1]


def test_two_failures_raise(monkeypatch, db):
    def down(self, args=None, connection=None, **options):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("celery.app.task.Task.apply_async", down)
    with pytest.raises(ConnectionRefusedError):
        routing.send_task(routing.SEND_REPORT_NOTIFICATION, ["x"], priority="normal")


def test_another_current_app_or_broker_gets_its_own_connection(settings):
    from celery import Celery, current_app

    first = publisher.connection(current_app, 2.5)  # the proxy: resolved to the app
    assert publisher.connection(app, 2.5) is first
    other = Celery("other-broker", set_as_current=False)
    other.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672/elsewhere"
    second = publisher.connection(other, 2.5)
    assert second is not first
    assert second.virtual_host == "elsewhere"
