"""Delivery of a finished report: e-mail and webhooks.

:func:`deliver` is the notification step's one call (``services.notify``,
once per finished report, under its notification lease, ``notified_at``):

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

Nothing is delivered for a report whose owner (the schedule's, or the
requester) is inactive: a scheduled run's channels are ``skipped`` with a
note saying why (:mod:`.policy`), as a run queued before the deactivation
would otherwise mail and post its report. E-mail recipients are checked
against the recipients policy at send time as well.

Cancelled reports get no e-mail (a scheduled one's pending e-mail becomes
``skipped``); ``services.cancel_report`` delivers them once committed.

:func:`deliver_execution_failure` covers a scheduled run that failed before
its report existed (parameters no longer valid, generator removed, report
refused, invalid stored timing): the owner is e-mailed, once. No webhook is
posted for such a run: webhook messages and their recorded attempts
(``WebhookDelivery.report``) belong to a report, so its ``webhook_status`` is
``skipped``. When the notification tasks' retries are spent, :func:`abandon`
and :func:`abandon_execution_failure` record the e-mail still pending ``failed``.

Modules: :mod:`.email` (templates, sending, the ``email_status`` claim),
:mod:`.attachments` (attach or link the file), :mod:`.webhooks` (secrets,
payload, queueing, attempts), :mod:`.http` (the pinned POST) and
:mod:`.network` (which URLs and addresses may be reached).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from .. import events
from ..models import Report, ScheduleExecution
from . import email, policy, webhooks
from .email import abandon, abandon_execution_failure, deliver_execution_failure
from .network import WebhookURLRefused, validate_webhook_url
from .webhooks import execution_for, webhook_secret_for_user

__all__ = [
    "WebhookURLRefused",
    "abandon",
    "abandon_execution_failure",
    "deliver",
    "deliver_execution_failure",
    "validate_webhook_url",
    "webhook_secret_for_user",
    "webhooks",
]

logger = logging.getLogger(__name__)


def deliver(report: Report, *, takeover: bool = False) -> None:
    """Send a finished report's e-mail and queue its webhook, as its settings ask.

    The webhook is queued first, so an e-mail error (raised for the
    notification step to retry) never holds it back. Raises on transient
    errors only: an unreachable SMTP server or broker. ``takeover``: the caller
    took the notification over from a run that died, and may resume the
    channels that run had claimed.
    """
    if report.status not in Report.FINISHED_STATUSES:
        return
    execution = execution_for(report)
    owner = execution.schedule.owner if execution is not None else report.user
    if not policy.is_active_account(owner):
        _skip_inactive_owner(report, execution)
        return
    if execution is not None:
        schedule = execution.schedule
        empty = (report.result_data or {}).get("row_count") == 0
        if report.status == Report.Status.COMPLETED and schedule.skip_if_empty and empty:
            if schedule.send_email:
                email.skip(execution)
            webhooks.skip(execution)
            return
        if report.status == Report.Status.CANCELLED:
            # E-mail settled first: whoever sees the webhook sent sees the e-mail skipped.
            email.skip_cancelled(execution)
            webhooks.enqueue(report, execution, takeover=takeover)
            return
        webhooks.enqueue(report, execution, takeover=takeover)
        if email.deliver_scheduled(report, execution, takeover=takeover) == email.SENT:
            ids: dict[str, Any] = {"schedule_id": str(schedule.pk), "execution_id": execution.pk}
            events.log_event(events.DELIVERED, report, channel="email", **ids)
        return
    webhooks.enqueue(report, None)
    if report.send_email and email.deliver_to_requester(report):
        events.log_event(events.DELIVERED, report, channel="email")


def _skip_inactive_owner(report: Report, execution: ScheduleExecution | None) -> None:
    """The owner's account is inactive: deliver nothing, and say so on the execution."""
    logger.warning("Report %s is not delivered: its owner's account is inactive.", report.pk)
    if execution is None:
        return
    # One transaction: nobody reads the channels skipped without the reason.
    with transaction.atomic():
        skipped = email.skip_pending(execution) | webhooks.skip(execution)
        if skipped:
            policy.add_note(execution, policy.INACTIVE_OWNER_DELIVERY)
