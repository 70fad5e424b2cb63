"""Celery tasks of the test suite, found by the worker's ``autodiscover_tasks()``."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

# The worker's consumer (worker_ready's sender), for the task below.
_consumers: list[Any] = []


@worker_ready.connect
def _remember_consumer(sender: Any = None, **kwargs: Any) -> None:
    _consumers.append(sender)


@shared_task(bind=True, name="tests.break_consumer_channel")
def break_consumer_channel(self: Any) -> None:
    """Make RabbitMQ close the worker's consumer channel with 406 PRECONDITION_FAILED.

    It acknowledges a delivery tag the broker never gave, on the channel the
    worker consumes from: the same channel error as a message outliving
    ``consumer_timeout``, whose 30 minutes a test cannot wait for (RabbitMQ
    3.10 has no per-queue timeout, and the shared broker's global one stays).
    Needs the solo pool: the channel lives in the worker's main process. The
    solo pool acknowledges after the run, on the channel just closed, so the
    message comes back once, redelivered: that run does nothing.
    """
    if (self.request.delivery_info or {}).get("redelivered"):
        return
    channel = _consumers[-1].task_consumer.channel
    channel.basic_ack(delivery_tag=2**40)
