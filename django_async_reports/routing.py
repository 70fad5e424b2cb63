"""Where report tasks go: queues, routing keys and message priorities.

Urgent reports go to ``HIGH_PRIORITY_QUEUE``; high, normal and low share
``QUEUE`` and are ordered by RabbitMQ message priority. Both queues are
durable and declared with an explicit ``x-queue-type`` (``QUEUE_TYPE``), and
classic ones with ``x-max-priority``.

This module is also the one door to the broker for the rest of the package:
services, schedules and delivery send tasks *by name* through
:func:`send_task`, so none of them imports Celery or the task module (which
imports them). Every publish is bounded (:func:`publish_options`): with
publisher confirms on (``configure_celery``), a message counts as sent only
once the broker has taken it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import current_app, current_task
from kombu import Exchange, Queue

from . import publisher
from .conf import report_settings
from .queue_declaration import ReportQueue

# Task names, stable across module moves (the task module registers them).
GENERATE_REPORT = "django_async_reports.generate_report"
POST_PROCESS_REPORT = "django_async_reports.post_process_report"
SEND_REPORT_NOTIFICATION = "django_async_reports.send_report_notification"
SEND_SCHEDULE_FAILURE_NOTIFICATION = "django_async_reports.send_schedule_failure_notification"
DELIVER_WEBHOOK = "django_async_reports.deliver_webhook"
TICK_SCHEDULES = "django_async_reports.tick_schedules"
CLEANUP_EXPIRED_REPORTS = "django_async_reports.cleanup_expired_reports"
SWEEP_REPORTS = "django_async_reports.sweep_reports"
GENERATE_REPORT_PART = "django_async_reports.generate_report_part"
ASSEMBLE_REPORT = "django_async_reports.assemble_report"

#: AMQP reply code of a passive declare of a queue that does not exist.
NOT_FOUND = 404


def report_exchange() -> Exchange:
    return Exchange(report_settings.EXCHANGE, type="direct", durable=True)


def queue_arguments() -> dict[str, Any]:
    """The arguments both queues are declared with.

    The queue type is always explicit: a broker whose default type is quorum
    (Amazon MQ 4.2) would otherwise create quorum queues. Quorum queues get no
    ``x-max-priority``: RabbitMQ 3.x refuses it on them (``invalid arg``), and
    4.0-4.2 sort quorum messages in two levels without it (see docs/celery.md).
    """
    if report_settings.QUEUE_TYPE == "quorum":
        return {"x-queue-type": "quorum"}
    return {"x-queue-type": "classic", "x-max-priority": int(report_settings.MAX_PRIORITY)}


def _queue(name: str, routing_key: str) -> Queue:
    return ReportQueue(
        name,
        report_exchange(),
        routing_key=routing_key,
        durable=True,
        queue_arguments=queue_arguments(),
    )


def report_queues() -> list[Queue]:
    """The two queues of the app, as kombu ``Queue`` declarations."""
    return [
        _queue(report_settings.QUEUE, report_settings.ROUTING_KEY),
        _queue(report_settings.HIGH_PRIORITY_QUEUE, report_settings.HIGH_PRIORITY_ROUTING_KEY),
    ]


def ensure_declared(app: Any) -> None:
    """Make sure ``app`` knows the report queues with their arguments.

    ``configure_celery(app)`` does this for workers; doing it again here means
    a web process whose Celery app was configured differently still declares
    the queues durable with their arguments instead of plain ones.
    """
    queues = app.amqp.queues
    for queue in report_queues():
        if queue.name not in queues:
            queues.add(queue)


def result_options() -> dict[str, Any]:
    """``ignore_result`` for the package's messages, from ``TASK_RESULTS``.

    Ignored results also keep the publisher off the result backend: with a
    Redis backend, Celery otherwise subscribes to each task's result before
    publishing it, and a stopped Redis would refuse every new report.
    """
    return {"ignore_result": not report_settings.TASK_RESULTS}


def attempt_timeout() -> float:
    """Seconds one publish attempt may take: half of ``PUBLISH_TIMEOUT`` (two attempts)."""
    return float(report_settings.PUBLISH_TIMEOUT) / 2


def publish_options() -> dict[str, Any]:
    """``apply_async`` options that bound one publish attempt to :func:`attempt_timeout`.

    The publisher confirm is awaited that long at most: a broker that is down,
    unreachable or blocked (memory alarm) raises instead of hanging a request.
    :func:`send_task` tries twice, the second time on a fresh connection.
    """
    timeout = attempt_timeout()
    return {"retry": False, "timeout": timeout, "confirm_timeout": timeout}


def route_for_priority(priority: str) -> dict[str, Any]:
    """JSON-safe ``apply_async`` options (queue, exchange, routing key, priority)."""
    normal_queue, high_queue = report_queues()
    queue = high_queue if priority == "urgent" else normal_queue
    priorities = report_settings.MESSAGE_PRIORITIES
    return {
        "queue": queue.name,
        "exchange": queue.exchange.name,
        "routing_key": queue.routing_key,
        "priority": int(priorities.get(priority, priorities.get("normal", 5))),
    }


def send_task(name: str, args: Sequence[Any], *, priority: str, **options: Any) -> None:
    """Publish task ``name`` with ``args`` on the route of ``priority``.

    ``options`` are ``apply_async`` options (``task_id``, ``countdown``,
    time limits). Two attempts, the second on a fresh connection (a kept one
    may have gone stale), each bounded (:func:`publish_options`). Raises the
    broker's error when the message cannot be sent.
    """
    app = current_app
    task = app.tasks.get(name)  # registered here: its own apply_async (and its defaults)
    if task is not None and _running_eagerly():
        # A step applied in-process (``generate_report.apply(...)`` in a host's
        # test, no broker) runs the steps it hands over to in-process too, so the
        # report ends completed and notified as a worker would leave it.
        task.apply(args=tuple(args), task_id=options.get("task_id"))
        return
    ensure_declared(app)
    options = {**route_for_priority(priority), **result_options(), **publish_options(), **options}
    for attempt in (1, 2):
        conn = publisher.connection(app, attempt_timeout())
        try:
            if task is not None:
                task.apply_async(args=tuple(args), connection=conn, **options)
            else:
                app.send_task(name, args=tuple(args), connection=conn, **options)
            return
        except Exception:
            publisher.drop()
            if attempt == 2:
                raise


def _running_eagerly() -> bool:
    """True inside a task executed in-process by ``Task.apply`` (or ``task_always_eager``)."""
    request = getattr(current_task, "request", None)
    return bool(getattr(request, "is_eager", False))


def celery_conf() -> Any:
    """The configuration of the Celery app messages are sent with (the host's, once loaded)."""
    return current_app.conf


# -- probes for the health check, the metrics and the queues command ------------


@dataclass(frozen=True)
class QueueState:
    """A queue as the broker reports it: ready messages and consumers; ``exists`` False if not."""

    name: str
    exists: bool = True
    messages: int = 0  # ready, not yet delivered (unacknowledged ones are not counted)
    consumers: int = 0


#: AMQP's reply code for a queue that does not exist.
NOT_FOUND = 404


def ping_broker(timeout: float) -> None:
    """Connect to the broker and open a channel, each step bounded by ``timeout``.

    Raises the client's error when the broker is down, unreachable or refuses
    the credentials. A connection of its own, closed at once: never the
    publishing connection of :mod:`.publisher`, which requests keep.
    """
    with publisher.open_connection(current_app, timeout) as conn:
        conn.ensure_connection(max_retries=0)
        conn.channel().close()


def queue_states(names: Sequence[str], timeout: float) -> dict[str, QueueState]:
    """Ready messages and consumers of each queue in ``names``, by passive declare.

    A passive declare reads a queue without creating or changing it (no
    management plugin needed: Amazon MQ's brokers answer it too). A queue that
    does not exist has ``exists`` False. Raises when the broker cannot be reached.
    """
    states: dict[str, QueueState] = {}
    with publisher.open_connection(current_app, timeout) as conn:
        conn.ensure_connection(max_retries=0)
        for name in names:
            channel = conn.channel()  # a 404 closes the channel it comes on
            try:
                _, messages, consumers = channel.queue_declare(queue=name, passive=True)
            except Exception as exc:
                # The file-system and memory transports give the code as a string.
                if str(getattr(exc, "reply_code", "")) != str(NOT_FOUND):
                    raise
                states[name] = QueueState(name, exists=False)
                continue
            states[name] = QueueState(name, True, int(messages), int(consumers))
            with contextlib.suppress(Exception):
                channel.close()
    return states
