"""routing.ping_broker and routing.queue_states on the real broker, and on a closed port."""

from __future__ import annotations

import time

import pytest
from celery import current_app
from django.conf import settings
from kombu import Connection, Producer

import tests.celery_app  # noqa: F401  (the test Celery app, current: the test broker)
from django_async_reports import routing


def test_ping_on_the_real_broker():
    routing.ping_broker(2.0)  # raises when it cannot


def test_a_missing_queue_is_none_and_an_existing_one_is_read():
    existing = f"{settings.QUEUE_PREFIX}_probe_existing"
    missing = f"{settings.QUEUE_PREFIX}_probe_missing"
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=existing, durable=False, auto_delete=False)
        channel.queue_purge(existing)
        Producer(channel).publish({"n": 1}, exchange="", routing_key=existing)
        try:
            states = routing.queue_states([missing, existing], 2.0)
        finally:
            channel.queue_delete(existing)
    assert states[missing] == routing.QueueState(missing, exists=False)
    assert states[existing] == routing.QueueState(existing, messages=1, consumers=0)


def test_closed_port_fails_fast(monkeypatch):
    monkeypatch.setitem(current_app.conf, "broker_url", "amqp://guest:guest@127.0.0.1:1//")
    started = time.monotonic()
    with pytest.raises(Exception, match="Connection refused"):
        routing.queue_states(["anything"], 1.0)
    assert time.monotonic() - started < 1.5
    with pytest.raises(Exception, match="Connection refused"):
        routing.ping_broker(1.0)
