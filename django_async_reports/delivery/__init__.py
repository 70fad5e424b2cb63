"""Delivery of a finished report: e-mail and webhooks.

:func:`deliver` is the notification step's one call (``services.notify``,
once per finished report, after its ``notified_at`` claim):

* **Scheduled report** (it has a ``schedule_execution``): the schedule's
  settings decide. Completed: the report is e-mailed to ``email_recipients``
  when ``send_email``; with ``skip_if_empty`` and no rows nothing is delivered
  and both channels record ``skipped``. Failed: the schedule's owner is
  e-mailed the error. Each channel is claimed on the execution
  (``email_status`` / ``webhook_status``), so it happens at most once however
  often the step is retried or redelivered.
* **Ad-hoc report**: the requester is e-mailed when ``report.send_email``.
* Either way, a webhook is queued when a URL is set (the schedule's, or
  ``report.webhook_url``), for completed, failed and cancelled reports.

Cancelled reports get no e-mail (a scheduled one's pending e-mail becomes
``skipped``); ``services.cancel_report`` delivers them once committed.

:func:`deliver_execution_failure` covers a scheduled run that failed before
its report existed (parameters no longer valid, generator removed, report
refused, invalid stored timing): the owner is e-mailed, once. No webhook is
posted for such a run: webhook messages and their recorded attempts
(``WebhookDelivery.report``) belong to a report, so its ``webhook_status`` is
``skipped``.
"""

from __future__ import annotations

from ..models import Report, ScheduleExecution
from .email import (
    abandon_execution_email,
    abandon_schedule_email,
    deliver_execution_failure_email,
    deliver_requester_email,
    deliver_schedule_email,
    download_url,
    send_report_email,
    skip_cancelled_email,
    skip_schedule_email,
)
from .network import WebhookURLRefused, validate_webhook_url
from .webhooks import execution_for, webhook_secret_for_user

__all__ = [
    "WebhookURLRefused",
    "abandon",
    "abandon_execution_failure",
    "deliver",
    "deliver_execution_failure",
    "download_url",
    "send_report_email",
    "validate_webhook_url",
    "webhook_secret_for_user",
]


def deliver(report: Report) -> None:
    """Send a finished report's e-mail and queue its webhook, as its settings ask.

    The webhook is queued first, so an e-mail error (raised for the
    notification step to retry) never holds it back. Raises on transient
    errors only: an unreachable SMTP server or broker.
    """
    from . import webhooks

    if report.status not in Report.FINISHED_STATUSES:
        return
    execution = execution_for(report)
    if execution is not None:
        schedule = execution.schedule
        empty = (report.result_data or {}).get("row_count") == 0
        if report.status == Report.Status.COMPLETED and schedule.skip_if_empty and empty:
            if schedule.send_email:
                skip_schedule_email(execution)
            webhooks.skip(execution)
            return
        webhooks.enqueue(report, execution)
        if report.status == Report.Status.CANCELLED:
            skip_cancelled_email(execution)
            return
        deliver_schedule_email(report, execution)
        return
    webhooks.enqueue(report, None)
    if report.send_email:
        deliver_requester_email(report)


def abandon(report: Report) -> None:
    """The notification step gave up (its retries are spent): settle what is still pending.

    A scheduled report's e-mail left ``pending`` by transient errors becomes
    ``failed``, so the execution's history tells the truth.
    """
    abandon_schedule_email(report)


def deliver_execution_failure(execution: ScheduleExecution) -> str | None:
    """Tell a schedule's owner that a run failed before its report existed, once.

    Returns the execution's e-mail status set (``sent``, ``skipped`` without an
    owner address, ``failed`` when refused for good), or None when there was
    nothing (left) to do. Raises on transient errors (SMTP 4xx, connection),
    the claim given back, for the caller to retry.
    """
    return deliver_execution_failure_email(execution)


def abandon_execution_failure(execution: ScheduleExecution) -> None:
    """The failure e-mail of a run without a report could not be sent: record it ``failed``."""
    abandon_execution_email(execution)
