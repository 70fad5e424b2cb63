"""How long a message may stay unacknowledged, against the broker's ``consumer_timeout``.

RabbitMQ (Amazon MQ too) closes a consumer's channel with ``406
PRECONDITION_FAILED`` when a message delivered to it stays unacknowledged
longer than ``consumer_timeout`` (30 minutes by default). The package's tasks
acknowledge late, so a message is unacknowledged for the task's whole run; a
message sent with a countdown (a retry) is also held, unacknowledged, by the
worker that received it until its time comes. So every message must fit::

    countdown + hard time limit + MARGIN <= CONSUMER_TIMEOUT

System check ``E021`` compares the settings; a countdown chosen at run time
(a webhook receiver's ``Retry-After``) is capped by :func:`cap_countdown`.
"""

from __future__ import annotations

from .conf import report_settings

#: Seconds kept free under ``consumer_timeout``: a reserved message may wait
#: a little for a free process, and the worker's clock is not the broker's.
MARGIN = 60

#: The longest countdown before a retry of post-processing, a notification or
#: a schedule's failure e-mail (their tasks' retry delays stay at or under it).
#: Webhook retries are capped at run time instead.
STEP_RETRY_DELAY_BOUND = 300


def consumer_timeout() -> float | None:
    """``CONSUMER_TIMEOUT`` in seconds, or None when it is off or unknown."""
    value = report_settings.CONSUMER_TIMEOUT
    return None if value is None else float(value)


def unacked_seconds(countdown: float, hard_limit: float) -> float:
    """The longest a message with this countdown and hard limit stays unacknowledged."""
    return countdown + hard_limit + MARGIN


def countdown_ceiling(hard_limit: float) -> float | None:
    """The longest countdown a message of a task with this hard limit may wait.

    None when ``CONSUMER_TIMEOUT`` is None (nothing to stay under).
    """
    timeout = consumer_timeout()
    if timeout is None:
        return None
    return max(0.0, timeout - hard_limit - MARGIN)


def cap_countdown(seconds: float, hard_limit: float) -> float:
    """``seconds``, or less: what keeps the delayed message under ``consumer_timeout``."""
    ceiling = countdown_ceiling(hard_limit)
    return seconds if ceiling is None else min(seconds, ceiling)
