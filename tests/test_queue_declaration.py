"""Queue arguments on the real broker: the explicit queue type, quorum queues, a queue that
exists with other arguments (used as it is, one clear error), dead-lettering set by policy.

Queues, exchanges and policies are named after ``QUEUE_PREFIX`` and removed afterwards.
"""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Producer, Queue

from django_async_reports import queue_declaration, routing
from tests.broker_admin import declare_raw, delete_queues, policy, queue_info, wait_for_policy

PREFIX = f"{settings.QUEUE_PREFIX}_decl"


@pytest.fixture
def names(settings):
    """Report queues and exchange of their own for one test, deleted afterwards."""
    queue, high, exchange = f"{PREFIX}_reports", f"{PREFIX}_reports_high", f"{PREFIX}_exchange"
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "QUEUE": queue,
        "HIGH_PRIORITY_QUEUE": high,
        "EXCHANGE": exchange,
    }
    queue_declaration._reported.clear()
    delete_queues(queue, high, exchanges=(exchange,))
    yield queue, high, exchange
    delete_queues(queue, high, f"{PREFIX}_dead", exchanges=(exchange, f"{PREFIX}_dlx"))
    queue_declaration._reported.clear()


def declare_report_queues() -> None:
    """What a worker does at start, and a publisher before its first message."""
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        for queue in routing.report_queues():
            queue(channel).declare()
        channel.close()


def test_classic_queues_are_declared_with_an_explicit_type_and_priorities(names):
    queue, high, _exchange = names
    declare_report_queues()
    for name in (queue, high):
        info = queue_info(name)
        assert info["type"] == "classic"
        assert info["arguments"] == {"x-queue-type": "classic", "x-max-priority": 10}


def test_an_existing_classic_queue_declared_without_a_type_is_still_equivalent(names):
    """Queues of earlier releases had no x-queue-type: declaring them now must not fail."""
    queue, _high, _exchange = names
    declare_raw(queue, {"x-max-priority": 10})
    declare_report_queues()  # raises if the broker found the arguments inequivalent
    assert queue_info(queue)["arguments"] == {"x-max-priority": 10}
    assert queue_declaration._reported == set()


def test_quorum_queues_on_this_broker(names, settings):
    queue, high, _exchange = names
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "QUEUE_TYPE": "quorum"}
    declare_report_queues()
    for name in (queue, high):
        info = queue_info(name)
        assert info["type"] == "quorum"
        assert info["arguments"] == {"x-queue-type": "quorum"}


def test_rabbitmq_3_refuses_x_max_priority_on_quorum_queues(names):
    """Why quorum queues are declared without it; an error that is not a mismatch is raised."""
    queue, _high, exchange = names
    declaration = queue_declaration.ReportQueue(
        queue,
        Exchange(exchange, "direct"),
        routing_key="k",
        queue_arguments={"x-queue-type": "quorum", "x-max-priority": 10},
    )
    with Connection(settings.CELERY_BROKER_URL) as conn:
        version = conn.connection.server_properties["version"]
        if not version.startswith("3."):
            pytest.fail(f"this test describes RabbitMQ 3.x; the broker is {version}")
        with pytest.raises(Exception, match="invalid arg 'x-max-priority'"):
            declaration(conn.channel()).declare()
    assert queue_info(queue) is None


def test_a_queue_with_other_arguments_is_used_as_it_is_by_publishers(names, caplog):
    """An operator recreated the queue with a dead-letter argument: publishing still works."""
    from tests.celery_app import app  # the host's app, as a web process has it

    queue, _high, _exchange = names
    declare_raw(queue, {"x-max-priority": 10, "x-dead-letter-exchange": f"{PREFIX}_dlx"})
    caplog.set_level(logging.ERROR, logger="django_async_reports.queue_declaration")

    for _ in range(3):
        routing.send_task("tests.unknown_task", ["x"], priority="normal")

    info = queue_info(queue)
    assert info["messages"] == 3  # bound and routed although never declared by us
    assert info["arguments"]["x-dead-letter-exchange"] == f"{PREFIX}_dlx"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert f"Queue {queue!r} exists on the broker with other arguments" in message
    assert "'x-dead-letter-exchange' differs (received none but current is the value" in message
    assert "set optional arguments such as dead-lettering by policy" in message
    assert "drain and delete the queue" in message
    assert app is routing.current_app._get_current_object()


def test_a_queue_with_other_arguments_is_consumed_as_it_is(names, caplog):
    """What a worker's task consumer does at start (kombu declares its queues)."""
    queue, _high, _exchange = names
    declare_raw(queue, {"x-queue-type": "classic"})  # no x-max-priority
    declaration = routing.report_queues()[0]
    caplog.set_level(logging.ERROR, logger="django_async_reports.queue_declaration")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        Producer(channel).publish(
            {"n": 1},
            exchange=declaration.exchange,
            routing_key=declaration.routing_key,
            declare=[declaration],
        )
        received = []
        consumer = Consumer(
            channel, queues=[declaration], callbacks=[lambda b, m: received.append(b)]
        )
        with consumer:
            conn.drain_events(timeout=5)
        assert received == [{"n": 1}]
        channel.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # one error per queue and process, however many declarations
    assert "'x-max-priority' differs" in errors[0]


def test_dead_lettering_set_by_policy(names):
    """The safe way to dead-letter: a policy. Declarations stay equivalent, rejects are kept."""
    queue, high, _exchange = names
    dlx, dead = f"{PREFIX}_dlx", f"{PREFIX}_dead"
    declare_report_queues()
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        Queue(dead, Exchange(dlx, "fanout", durable=True), durable=True)(channel).declare()
        name = f"{PREFIX}-dead-lettering"
        with policy(name, f"^{PREFIX}_reports(_high)?$", {"dead-letter-exchange": dlx}):
            wait_for_policy(queue, name)
            wait_for_policy(high, name)
            declare_report_queues()  # a worker starting: no inequivalent argument
            assert queue_declaration._reported == set()

            normal = routing.report_queues()[0]
            Producer(channel).publish(
                {"report": "r1"}, exchange=normal.exchange, routing_key=normal.routing_key
            )
            message = wait_get(normal(channel))
            message.reject(requeue=False)  # what a rejected (failed) task does

            dead_message = wait_get(Queue(dead, no_declare=True)(channel))
            assert dead_message.payload == {"report": "r1"}
            death = dead_message.headers["x-death"][0]
            assert (death["queue"], death["reason"]) == (queue, "rejected")
            dead_message.ack()
        assert queue_info(queue)["policy"] == ""
        channel.close()


def wait_get(queue, timeout: float = 5):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=False)
        if message is not None:
            return message
        time.sleep(0.05)
    raise AssertionError(f"no message in {queue.name} after {timeout}s")
