"""Sending a report's work to the broker: the generation chain and a lone notification.

Tasks are sent by name through :mod:`..routing`; nothing here imports Celery
or the task module.
"""

from __future__ import annotations

import logging

from .. import routing
from ..conf import report_settings
from ..models import Report
from ..registry import registry

logger = logging.getLogger(__name__)


def dispatch(report: Report) -> None:
    """Send the generate -> post-process -> notify chain for ``report``.

    The generation step carries the row's ``celery_task_id`` and the type's
    time limits; all three steps go on the route of the report's priority.
    """
    generator_class = registry.get(report.report_type)
    soft_limit = generator_class.soft_time_limit or report_settings.SOFT_TIME_LIMIT
    hard_limit = max(report_settings.time_limit, soft_limit + 60)
    args = [str(report.pk)]
    routing.send_chain(
        [
            (
                routing.GENERATE_REPORT,
                args,
                {
                    "task_id": report.celery_task_id,
                    "soft_time_limit": soft_limit,
                    "time_limit": hard_limit,
                },
            ),
            (routing.POST_PROCESS_REPORT, args, {}),
            (routing.SEND_REPORT_NOTIFICATION, args, {}),
        ],
        priority=report.priority,
    )


def queue_notification(report: Report) -> None:
    """Queue the notification step alone; a broker error is logged, not raised."""
    try:
        routing.send_task(
            routing.SEND_REPORT_NOTIFICATION, [str(report.pk)], priority=report.priority
        )
    except Exception:
        # The broker is down too: the report is failed and says why; the
        # e-mail is what is lost, and the log says so.
        logger.exception("Could not queue the notification of failed report %s", report.pk)
