"""Sending a report's steps to the broker: generate, post-process, notify.

Each step is one message, sent by the step before it once that one is done
(never a Celery chain: a chain's hand-off fails the *finished* step when the
broker blinks). Callers go through :mod:`.outbox`, which records the step
on the row first. Tasks are sent by name through :mod:`..routing`; nothing
here imports Celery or the task module.
"""

from __future__ import annotations

from typing import Any

from .. import routing
from ..conf import report_settings
from ..models import Report
from ..registry import registry

Step = Report.Step

_TASKS = {
    Step.GENERATE: routing.GENERATE_REPORT,
    Step.POST_PROCESS: routing.POST_PROCESS_REPORT,
    Step.ASSEMBLE: routing.ASSEMBLE_REPORT,
    Step.NOTIFY: routing.SEND_REPORT_NOTIFICATION,
}


def generation_limits(report_type: str) -> tuple[int, int]:
    """The soft and hard time limits, in seconds, of a report type's generation."""
    soft_limit = int(report_settings.SOFT_TIME_LIMIT)
    if report_type in registry:
        soft_limit = registry.get(report_type).soft_time_limit or soft_limit
    return soft_limit, max(int(report_settings.time_limit), soft_limit + 60)


def publish_step(report: Report, step: str, *, countdown: int | None = None) -> None:
    """Publish ``step`` of ``report`` on the route of its priority; raises broker errors.

    The generation message carries the row's ``celery_task_id`` and the type's
    time limits; ``countdown`` delays it (a retry).
    """
    options: dict[str, Any] = {} if countdown is None else {"countdown": countdown}
    if step == Step.GENERATE:
        soft_limit, hard_limit = generation_limits(report.report_type)
        options |= {
            "task_id": report.celery_task_id,
            "soft_time_limit": soft_limit,
            "time_limit": hard_limit,
        }
    routing.send_task(_TASKS[Step(step)], [str(report.pk)], priority=report.priority, **options)
