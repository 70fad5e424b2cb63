"""System checks of the security settings: fair use, and what may leave the building.

Registered beside :mod:`.checks` (which reports a malformed ``ASYNC_REPORTS``
as ``E001``; these then stay silent). Ids: ``E024``-``E026`` for the per-user
limits, ``THROTTLE_RATES`` and ``PRIORITIES_WITHOUT_PERMISSION``;
``E030``-``E032``, ``W010``-``W011`` for e-mail recipients and webhook ports.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import SETTINGS_NAME, report_settings
from .services import limits

# Per-user limits: None (off), or a whole number at least this much (E024).
_LIMITS = {
    "MAX_ACTIVE_REPORTS_PER_USER": 1,
    "MAX_SCHEDULES_PER_USER": 1,
    "MAX_RUNNING_PER_USER": 1,
    "MAX_PARAMETERS_DEPTH": 1,
    "MIN_CRON_INTERVAL": 0,
}


def _error(msg: str, id_: str, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, obj=SETTINGS_NAME, id=f"django_async_reports.{id_}")


@register(Tags.security)
def check_security_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the fair-use limits and the delivery policy settings."""
    try:
        value = report_settings.as_written()
    except ImproperlyConfigured:
        return []  # checks.py reports it (E001)

    return [
        *_check_fair_use(value),
        *_check_allowed_domains(value("EMAIL_ALLOWED_DOMAINS")),
        *_check_recipient_policy(),
        *_check_allowed_ports(value("WEBHOOK_ALLOWED_PORTS")),
    ]


def _check_fair_use(value: Any) -> list[CheckMessage]:
    """The per-user limits (E024), THROTTLE_RATES (E025), PRIORITIES_WITHOUT_PERMISSION (E026)."""
    errors: list[CheckMessage] = []
    for name, least in _LIMITS.items():
        v = value(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least):
            errors.append(
                _error(
                    f"{SETTINGS_NAME}[{name!r}] must be None (no limit) or an integer >= {least}, "
                    f"not {v!r}.",
                    "E024",
                )
            )
    rates = value("THROTTLE_RATES")
    if rates is not None and not isinstance(rates, dict):
        errors.append(_error(f"{SETTINGS_NAME}['THROTTLE_RATES'] must be a dict or None.", "E025"))
    for action, rate in (rates or {}).items() if isinstance(rates, dict) else ():
        problem = ""
        if action not in limits.THROTTLED_ACTIONS:
            problem = f"{action!r} is not a throttled action"
        elif rate is not None:
            try:
                limits.parse_rate(rate)
            except ValueError as exc:
                problem = str(exc)
        if problem:
            errors.append(
                _error(
                    f"{SETTINGS_NAME}['THROTTLE_RATES']: {problem}.",
                    "E025",
                    f'Keys: {", ".join(limits.THROTTLED_ACTIONS)}; values like "60/minute", '
                    "or None for no throttle.",
                )
            )
    free = value("PRIORITIES_WITHOUT_PERMISSION")
    known = {"low", "normal", "high", "urgent"}
    if not isinstance(free, (list, tuple)) or not set(free) <= known:
        errors.append(
            _error(
                f"{SETTINGS_NAME}['PRIORITIES_WITHOUT_PERMISSION'] must be a list of priorities "
                f"(low, normal, high, urgent), not {free!r}.",
                "E026",
            )
        )
    return errors


def _warning(msg: str, id_: str, hint: str | None = None) -> Warning:
    return Warning(msg, hint=hint, obj=SETTINGS_NAME, id=f"django_async_reports.{id_}")


def _check_allowed_domains(domains: Any) -> list[CheckMessage]:
    """EMAIL_ALLOWED_DOMAINS: None or a list of domains (E030); empty, it mails nobody (W010)."""
    name = f"{SETTINGS_NAME}['EMAIL_ALLOWED_DOMAINS']"
    if domains is None:
        return []
    hint = "Give None (any domain) or a list such as ['example.com', '.example.org']."
    if not isinstance(domains, (list, tuple)):
        return [_error(f"{name} must be None or a list of domains, not {domains!r}.", "E030", hint)]
    bad = [
        d
        for d in domains
        if not isinstance(d, str)
        or not d.strip(" .")
        or "@" in d
        or any(ch.isspace() for ch in d.strip())
    ]
    if bad:
        return [_error(f"{name} has invalid domain(s): {bad!r}.", "E030", hint)]
    if not domains:
        return [
            _warning(
                f"{name} is an empty list: every report e-mail is refused.",
                "W010",
                "Use None to allow any domain, or list the domains reports may be mailed to.",
            )
        ]
    return []


def _check_recipient_policy() -> list[CheckMessage]:
    """EMAIL_RECIPIENT_POLICY: None, or the import string of a callable (E031)."""
    try:
        policy = report_settings.EMAIL_RECIPIENT_POLICY
    except ImproperlyConfigured as exc:
        return [_error(str(exc), "E031")]
    if policy is not None and not callable(policy):
        return [
            _error(
                f"{SETTINGS_NAME}['EMAIL_RECIPIENT_POLICY'] must name a callable "
                f"(address, user) -> bool, not {policy!r}.",
                "E031",
            )
        ]
    return []


def _check_allowed_ports(ports: Any) -> list[CheckMessage]:
    """WEBHOOK_ALLOWED_PORTS: None or a list of ports 1-65535 (E032); empty refuses all (W011)."""
    name = f"{SETTINGS_NAME}['WEBHOOK_ALLOWED_PORTS']"
    if ports is None:
        return []
    valid = isinstance(ports, (list, tuple)) and all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
    )
    if not valid:
        return [
            _error(
                f"{name} must be None (any port) or a list of ports from 1 to 65535, "
                f"not {ports!r}.",
                "E032",
                "The default is [80, 443].",
            )
        ]
    if not ports:
        return [
            _warning(
                f"{name} is an empty list: every webhook URL is refused.",
                "W011",
                "List the ports webhook receivers listen on, such as [443].",
            )
        ]
    return []
