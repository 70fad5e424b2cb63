"""Declaring a report queue that may already exist with other arguments.

RabbitMQ refuses to declare a queue that exists with other arguments
(``406 PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange'``...)
and closes the channel. Left alone, that stops every worker at start
("Unrecoverable error") and fails every publish, until someone deletes the
queue: an operator who recreated ``reports`` with a dead-letter argument, or a
queue created by an older configuration, would take the whole app down.

:class:`ReportQueue` declares on a channel of its own first. When the broker
answers "inequivalent arg", it logs one error per queue and process (which
queue, which argument, how to fix it) and uses the queue as it exists: the
exchange and the binding are still declared, the queue itself is not, so the
worker consumes and the web process publishes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from kombu import Queue

logger = logging.getLogger(__name__)

#: RabbitMQ's reply code for a declaration that conflicts with what exists.
PRECONDITION_FAILED = 406
_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<argument>[^']+)' for queue '(?P<queue>[^']*)'[^:]*:\s*(?P<detail>.*)",
    re.DOTALL,
)

# Queues whose mismatch this process has logged already (once is enough:
# a worker declares again at every reconnection, a publisher per connection).
_reported: set[str] = set()


@dataclass(frozen=True)
class ArgumentMismatch:
    """What differs between a queue on the broker and its declaration."""

    queue: str
    argument: str
    detail: str  # RabbitMQ's words: "received none but current is the value 'dlx' ..."


def mismatch_from(exc: BaseException) -> ArgumentMismatch | None:
    """The argument a 406 "inequivalent arg ... for queue" error names; None for other errors."""
    if getattr(exc, "reply_code", None) != PRECONDITION_FAILED:
        return None
    match = _INEQUIVALENT.search(str(getattr(exc, "reply_text", "") or exc))
    if match is None:
        return None
    return ArgumentMismatch(match["queue"], match["argument"], match["detail"].strip())


def describe_mismatch(mismatch: ArgumentMismatch) -> str:
    """The error logged for a mismatch: the queue, the argument, and the ways out."""
    return (
        f"Queue {mismatch.queue!r} exists on the broker with other arguments than "
        f"django-async-reports declares: {mismatch.argument!r} differs ({mismatch.detail}). "
        "The queue is used as it is, without being declared, so reports still flow; "
        "what the declaration asked for and the queue lacks (message priorities, the queue "
        "type) does not apply. To fix it: set optional arguments such as dead-lettering by "
        "policy (rabbitmqctl set_policy, see docs/celery.md), never as queue arguments; then "
        "drain and delete the queue, and the next worker to start declares it again; or give "
        "ASYNC_REPORTS QUEUE / HIGH_PRIORITY_QUEUE new names."
    )


class ReportQueue(Queue):
    """A kombu ``Queue`` that falls back to the existing queue when its arguments differ.

    Only AMQP brokers are probed; other transports declare as kombu does.
    """

    def declare(self, nowait: bool = False, channel: Any = None) -> str | None:
        channel = channel or self.channel
        client = channel.connection.client
        if getattr(self, "no_declare", False) or client.transport.driver_type != "amqp":
            return super().declare(nowait=nowait, channel=channel)
        probe = client.channel()  # a 406 closes the channel it comes on: not the caller's
        try:
            super().declare(channel=probe)
        except Exception as exc:
            mismatch = mismatch_from(exc)
            if mismatch is None:
                raise
            self._use_existing(mismatch, channel)
        finally:
            _close_quietly(probe)
        return self.name

    def _use_existing(self, mismatch: ArgumentMismatch, channel: Any) -> None:
        if self.name not in _reported:
            _reported.add(self.name)
            logger.error(describe_mismatch(mismatch))
        else:
            logger.debug("Queue %r: using it as it exists (%s).", self.name, mismatch.argument)
        # Neither depends on the queue's arguments: messages keep reaching it.
        if self.exchange and self.exchange.name:
            self.exchange.declare(channel=channel)
            self.queue_bind(channel=channel)


def _close_quietly(channel: Any) -> None:
    try:
        channel.close()
    except Exception:  # the broker closed it already (the 406), or the connection went
        logger.debug("Could not close a declaration channel", exc_info=True)
