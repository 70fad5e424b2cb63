"""System checks of the broker topology, with ids that follow :mod:`.checks`.

Every message must stay under the broker's ``consumer_timeout`` (E021), the
queue type is one RabbitMQ knows (E019), workers refuse content that runs code
when it is decoded (E022), and a mail server that hangs does not hold a worker
process until its time limit (W004). The outbox's timings are checked too (E023).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import broker_limits
from .conf import SETTINGS_NAME, report_settings
from .registry import registry
from .routing import celery_conf

QUEUE_TYPES = ("classic", "quorum")
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
#: Serializers that run code while decoding: anyone who can publish to the
#: broker (a leaked password, another app on the vhost) would run it on workers.
UNSAFE_CONTENT = frozenset(
    {"pickle", "yaml", "application/x-python-serialize", "application/x-yaml"}
)
#: Celery settings naming accepted or produced content.
CONTENT_SETTINGS = (
    "accept_content",
    "result_accept_content",
    "task_serializer",
    "result_serializer",
)


def _error(msg: str, id_: str, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, obj=SETTINGS_NAME, id=f"django_async_reports.{id_}")


def _seconds(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


@register(Tags.compatibility)
def check_broker_topology(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Queue type, time limits against consumer_timeout, accepted content, EMAIL_TIMEOUT."""
    try:
        value = report_settings.as_written()
    except ImproperlyConfigured:
        return []  # E001 (checks.py) says why

    messages: list[CheckMessage] = []
    if value("QUEUE_TYPE") not in QUEUE_TYPES:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['QUEUE_TYPE'] must be 'classic' or 'quorum', "
                f"not {value('QUEUE_TYPE')!r}.",
                "E019",
            )
        )
    limits = _check_limit_settings(value)
    messages.extend(limits)
    if not limits:
        messages.extend(check_unacknowledged_time(value))
        messages.extend(check_email_timeout(value("TASK_SOFT_TIME_LIMIT")))
        messages.extend(check_reliability_settings(value))
    messages.extend(check_accepted_content(_content_settings()))
    return messages


def _check_limit_settings(value: Callable[[str], Any]) -> list[CheckMessage]:
    """E020: CONSUMER_TIMEOUT, TASK_SOFT_TIME_LIMIT and TASK_TIME_LIMIT are seconds."""
    messages: list[CheckMessage] = []
    soft, hard, timeout = (
        value("TASK_SOFT_TIME_LIMIT"),
        value("TASK_TIME_LIMIT"),
        value("CONSUMER_TIMEOUT"),
    )
    if timeout is not None and not _seconds(timeout):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['CONSUMER_TIMEOUT'] must be the broker's consumer_timeout in "
                f"seconds (> 0), or None; not {timeout!r}.",
                "E020",
                "RabbitMQ's and Amazon MQ's default is 1800 (30 minutes).",
            )
        )
    if not _seconds(soft):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['TASK_SOFT_TIME_LIMIT'] must be a number of seconds > 0, "
                f"not {soft!r}.",
                "E020",
            )
        )
    elif hard is not None and not (_seconds(hard) and hard > soft):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['TASK_TIME_LIMIT'] must be None or a number of seconds greater "
                f"than TASK_SOFT_TIME_LIMIT ({soft}); not {hard!r}.",
                "E020",
            )
        )
    return messages


def check_unacknowledged_time(value: Callable[[str], Any]) -> list[CheckMessage]:
    """E021: countdown + hard limit (+ margin) of every message fits in CONSUMER_TIMEOUT."""
    timeout = value("CONSUMER_TIMEOUT")
    soft, hard, countdown = value("SOFT_TIME_LIMIT"), value("TIME_LIMIT"), value("RETRY_COUNTDOWN")
    if timeout is None or not _seconds(soft) or not isinstance(countdown, (int, float)):
        return []  # nothing to stay under, or E002 already refuses these
    default_hard = hard if _seconds(hard) else soft + 60
    messages: list[CheckMessage] = []
    for what, own_soft in _generation_limits(soft):
        generation_hard = max(default_hard, own_soft + 60)
        unacked = broker_limits.unacked_seconds(countdown, generation_hard)
        if unacked > timeout:
            messages.append(
                _too_long(
                    f"generate_report ({what})",
                    unacked,
                    timeout,
                    f"RETRY_COUNTDOWN {countdown} s + hard time limit {generation_hard} s",
                    "Lower the soft_time_limit, SOFT_TIME_LIMIT / TIME_LIMIT or RETRY_COUNTDOWN",
                )
            )
    task_soft = value("TASK_SOFT_TIME_LIMIT")
    task_hard = value("TASK_TIME_LIMIT") or task_soft + 60
    delay = broker_limits.STEP_RETRY_DELAY_BOUND
    unacked = broker_limits.unacked_seconds(delay, task_hard)
    if unacked > timeout:
        messages.append(
            _too_long(
                "post-processing, notifications, webhooks, the tick and the cleanup",
                unacked,
                timeout,
                f"a retry's delay of up to {delay} s + hard time limit {task_hard} s",
                "Lower TASK_SOFT_TIME_LIMIT / TASK_TIME_LIMIT",
            )
        )
    return messages


def _generation_limits(default_soft: float) -> Iterable[tuple[str, float]]:
    """(what, soft limit) for the default, and for each type allowed longer than that."""
    yield "SOFT_TIME_LIMIT", default_soft
    for generator in registry:
        if generator.soft_time_limit and generator.soft_time_limit > default_soft:
            yield f"report type {generator.report_type!r}", generator.soft_time_limit


def _too_long(what: str, unacked: float, timeout: float, parts: str, fix: str) -> Error:
    return _error(
        f"A message of {what} may stay unacknowledged {unacked:g} s ({parts} + "
        f"{broker_limits.MARGIN} s margin), longer than CONSUMER_TIMEOUT ({timeout:g} s): the "
        "broker would close the worker's channel and deliver the message again while it runs.",
        "E021",
        f"{fix}, or raise the broker's consumer_timeout and CONSUMER_TIMEOUT with it.",
    )


def check_email_timeout(task_soft_limit: float) -> list[CheckMessage]:
    """W004: every SMTP mailer has a timeout, under the tasks' soft limit.

    A warning, not an error: the soft limit now ends a hung SMTP exchange, at
    the cost of holding a worker process that long per attempt. On Django 6.1+
    with ``MAILERS``, each SMTP mailer's ``OPTIONS["timeout"]``; otherwise
    ``EMAIL_BACKEND`` and ``EMAIL_TIMEOUT``.
    """
    messages: list[CheckMessage] = []
    for name, email_timeout in _smtp_timeouts():
        if _seconds(email_timeout) and float(email_timeout or 0) < task_soft_limit:
            continue
        messages.append(
            Warning(
                f"{name} is {email_timeout!r}: a mail server that stops answering holds the "
                f"worker process sending a report's e-mail until TASK_SOFT_TIME_LIMIT "
                f"({task_soft_limit} s) ends the attempt.",
                hint=f"Set {name} to a few seconds, less than {task_soft_limit}, e.g. 30.",
                obj=name,
                id="django_async_reports.W004",
            )
        )
    return messages


def _smtp_timeouts() -> list[tuple[str, Any]]:
    """(setting, timeout) of each SMTP mailer the project sends with."""
    mailers = getattr(settings, "MAILERS", None)
    if mailers is not None:  # Django 6.1+, migrated
        return [
            (f'MAILERS["{alias}"]["OPTIONS"]["timeout"]', config.get("OPTIONS", {}).get("timeout"))
            for alias, config in mailers.items()
            if config.get("BACKEND") == SMTP_BACKEND
        ]
    # The settings Django 6.1 deprecates in favour of MAILERS: reading them is not
    # the project's use of them, so their deprecation warning is not repeated here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        if getattr(settings, "EMAIL_BACKEND", SMTP_BACKEND) != SMTP_BACKEND:
            return []
        return [("EMAIL_TIMEOUT", getattr(settings, "EMAIL_TIMEOUT", None))]


def _content_settings() -> dict[str, Any]:
    """The Celery app's content settings, and any ``CELERY_*`` ones in Django's settings."""
    found = {}
    conf = celery_conf()
    for name in CONTENT_SETTINGS:
        found[name] = conf.get(name)
        django_name = f"CELERY_{name.upper()}"
        if hasattr(settings, django_name):
            found[django_name] = getattr(settings, django_name)
    return found


def check_accepted_content(content: dict[str, Any]) -> list[CheckMessage]:
    """E022: no pickle or YAML among the content Celery accepts or produces."""
    unsafe = {}
    for name, value in content.items():
        values = [value] if isinstance(value, str) else list(value or ())
        bad = sorted({str(v) for v in values if str(v).lower() in UNSAFE_CONTENT})
        if bad:
            unsafe[name] = bad
    if not unsafe:
        return []
    listed = "; ".join(f"{name}: {', '.join(bad)}" for name, bad in sorted(unsafe.items()))
    return [
        _error(
            f"Celery is configured to accept or send pickle or YAML ({listed}). Decoding them "
            "runs code: anyone who can publish to the broker would run it on every worker.",
            "E022",
            "Keep Celery's defaults (accept_content = ['json'], JSON serializers); the "
            "package's messages are JSON.",
        )
    ]


def check_reliability_settings(value: Callable[[str], Any]) -> list[CheckMessage]:
    """E023: the outbox's timings are seconds, and a notification's lease outlives its task.

    A lease shorter than the notification task's hard limit would let the
    sweeper's message take over a delivery still under way: e-mailed twice.
    """
    messages: list[CheckMessage] = []
    for name in ("PUBLISH_TIMEOUT", "STUCK_MARGIN", "NOTIFY_LEASE"):
        if not _seconds(value(name)):
            messages.append(
                _error(f"{SETTINGS_NAME}['{name}'] must be a number of seconds.", "E023")
            )
    interval = value("SWEEP_INTERVAL")
    if interval is not None and not _seconds(interval):
        messages.append(
            _error(f"{SETTINGS_NAME}['SWEEP_INTERVAL'] must be seconds, or None.", "E023")
        )
    if messages:
        return messages
    soft = value("TASK_SOFT_TIME_LIMIT")
    hard = value("TASK_TIME_LIMIT") or soft + 60
    if value("NOTIFY_LEASE") < hard:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['NOTIFY_LEASE'] ({value('NOTIFY_LEASE')} s) is shorter than "
                f"the notification task's hard time limit ({hard} s).",
                "E023",
                hint="A delivery still under way could be taken over and sent twice: "
                "raise NOTIFY_LEASE above TASK_TIME_LIMIT.",
            )
        )
    return messages
