"""Who may receive a report: the e-mail recipients policy and the owner's account.

A report's data leaves the building by e-mail and webhook. Two rules decide
whether it may, checked when a schedule (or a report asking for its e-mail)
is saved and again at every send, since the settings and the account may
change in between:

* **Recipients.** ``ASYNC_REPORTS["EMAIL_ALLOWED_DOMAINS"]`` (None: any
  domain) lists the domains e-mails may go to, ``"example.com"`` for that
  domain only and ``".example.com"`` for it and its subdomains, as Django's
  ``ALLOWED_HOSTS`` reads them; ``EMAIL_RECIPIENT_POLICY``, a callable
  ``(address, user) -> bool``, may refuse more. An address passes when both
  allow it. A policy that raises refuses the address (and is logged): a
  broken hook never lets mail out.
* **The owner's account.** A schedule whose owner is inactive
  (``is_active`` False) is not run, and a report of an inactive user is not
  delivered: no e-mail, no webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..conf import report_settings
from ..models import ScheduleExecution

logger = logging.getLogger(__name__)

#: The note recorded on a schedule's execution its owner's deactivation skipped.
INACTIVE_OWNER = "The owner's account is inactive: the schedule was disabled."
#: The note of a run whose delivery the owner's deactivation stopped.
INACTIVE_OWNER_DELIVERY = "The owner's account is inactive: nothing was delivered."


def is_active_account(user: Any) -> bool:
    """Whether ``user`` may still have reports delivered (user models without the flag: yes)."""
    return user is not None and bool(getattr(user, "is_active", True))


def _normalise_domain(domain: str) -> str:
    """Lower case, no trailing dot, IDNA (punycode) form when it has one."""
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def allowed_domains() -> list[str] | None:
    """``EMAIL_ALLOWED_DOMAINS`` normalised (leading dots kept); None: any domain may receive."""
    domains = report_settings.EMAIL_ALLOWED_DOMAINS
    if domains is None:
        return None
    normalised = []
    for entry in domains:
        entry = str(entry).strip()
        dot = "." if entry.startswith(".") else ""
        normalised.append(dot + _normalise_domain(entry.lstrip(".")))
    return normalised


def domain_matches(domain: str, pattern: str) -> bool:
    """``domain`` is ``pattern``, or with ``pattern`` = ``".example.com"``, it or a subdomain."""
    if pattern.startswith("."):
        return domain == pattern[1:] or domain.endswith(pattern)
    return domain == pattern


def is_allowed_recipient(address: str, user: Any) -> bool:
    """Whether report e-mails may go to ``address`` for ``user`` (the owner or the requester)."""
    domains = allowed_domains()
    if domains is not None:
        domain = _normalise_domain(address.rpartition("@")[2])
        if not any(domain_matches(domain, pattern) for pattern in domains):
            return False
    policy = report_settings.EMAIL_RECIPIENT_POLICY
    if policy is None:
        return True
    try:
        return bool(policy(address, user))
    except Exception:
        logger.exception("EMAIL_RECIPIENT_POLICY raised for %s; the address is refused.", address)
        return False


def refused_recipients(addresses: Iterable[str], user: Any) -> list[str]:
    """The addresses of ``addresses`` the policy refuses, in their order."""
    return [address for address in addresses if not is_allowed_recipient(address, user)]


def refusal_message(refused: list[str]) -> str:
    """The field message naming refused addresses (and the allowed domains, when set)."""
    message = f"Not allowed to receive reports: {', '.join(refused)}."
    domains = report_settings.EMAIL_ALLOWED_DOMAINS
    if domains:
        shown = ", ".join(
            f"{str(d).lstrip('.')} (and its subdomains)" if str(d).startswith(".") else str(d)
            for d in domains
        )
        message += f" Allowed domains: {shown}."
    return message


def add_note(execution: ScheduleExecution, text: str) -> None:
    """Add ``text`` to the execution's note (once: a retried delivery does not repeat it)."""
    current = ScheduleExecution.objects.filter(pk=execution.pk).values_list("note", flat=True)
    note = current.first() or ""
    if text in note.splitlines():
        return
    note = f"{note}\n{text}" if note else text
    ScheduleExecution.objects.filter(pk=execution.pk).update(note=note)
    execution.note = note


def allowed_recipients(execution: ScheduleExecution, recipients: list[str]) -> list[str]:
    """``recipients`` the policy allows now for the execution's owner; the others logged, noted."""
    schedule = execution.schedule
    refused = refused_recipients(recipients, schedule.owner)
    if not refused:
        return recipients
    logger.warning(
        "Execution %s of schedule %s: not e-mailing %s (refused by the recipients policy).",
        execution.pk,
        schedule.pk,
        ", ".join(refused),
    )
    add_note(execution, f"Not e-mailed (recipients policy): {', '.join(refused)}.")
    return [address for address in recipients if address not in refused]
