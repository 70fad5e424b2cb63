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

Cancelled reports get no e-mail.
"""

from __future__ import annotations

from ..models import Report
from .email import (
    abandon_schedule_email,
    deliver_requester_email,
    deliver_schedule_email,
    download_url,
    send_report_email,
    skip_schedule_email,
)
from .network import WebhookURLRefused, validate_webhook_url
from .webhooks import execution_for, webhook_secret_for_user

__all__ = [
    "WebhookURLRefused",
    "abandon",
    "deliver",
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
