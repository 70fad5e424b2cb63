"""Where report tasks go: queues, routing keys and message priorities.

Urgent reports go to ``HIGH_PRIORITY_QUEUE``; high, normal and low share
``QUEUE`` and are ordered by RabbitMQ message priority. Both queues are
durable and declared with ``x-max-priority``.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from .conf import report_settings


def report_exchange() -> Exchange:
    return Exchange(report_settings.EXCHANGE, type="direct", durable=True)


def _queue(name: str, routing_key: str) -> Queue:
    return Queue(
        name,
        report_exchange(),
        routing_key=routing_key,
        durable=True,
        queue_arguments={"x-max-priority": int(report_settings.MAX_PRIORITY)},
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
    the queues durable with ``x-max-priority`` instead of plain ones.
    """
    queues = app.amqp.queues
    for queue in report_queues():
        if queue.name not in queues:
            queues.add(queue)


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
