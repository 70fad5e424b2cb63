"""System checks of the health and metrics settings (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import SETTINGS_NAME, report_settings

#: A shorter METRICS_TOKEN is easy to guess (W020).
MIN_TOKEN_LENGTH = 16


def _seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _error(msg: str, id_: str) -> Error:
    return Error(msg, obj=SETTINGS_NAME, id=f"django_async_reports.{id_}")


@register(Tags.compatibility)
def check_operations_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E040-E043, W020: HEALTH_CHECK_TIMEOUT, METRICS_WINDOW, METRICS_TOKEN, DEAD_LETTER_QUEUE."""
    try:
        value = report_settings.as_written()
    except ImproperlyConfigured:
        return []  # E001 (checks.py) says why

    messages: list[CheckMessage] = []
    if not _seconds(value("HEALTH_CHECK_TIMEOUT")):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['HEALTH_CHECK_TIMEOUT'] must be a number of seconds > 0, "
                f"not {value('HEALTH_CHECK_TIMEOUT')!r}.",
                "E040",
            )
        )
    if not _seconds(value("METRICS_WINDOW")):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['METRICS_WINDOW'] must be a number of seconds > 0, "
                f"not {value('METRICS_WINDOW')!r}.",
                "E041",
            )
        )
    token = value("METRICS_TOKEN")
    if token is not None and not (isinstance(token, str) and token.strip()):
        messages.append(
            _error(f"{SETTINGS_NAME}['METRICS_TOKEN'] must be None or a non-empty string.", "E042")
        )
    elif isinstance(token, str) and len(token) < MIN_TOKEN_LENGTH:
        messages.append(
            Warning(
                f"{SETTINGS_NAME}['METRICS_TOKEN'] is shorter than {MIN_TOKEN_LENGTH} "
                "characters: easy to guess.",
                hint="Use a random token, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'.",
                obj=SETTINGS_NAME,
                id="django_async_reports.W020",
            )
        )
    queue = value("DEAD_LETTER_QUEUE")
    if queue is not None and not (isinstance(queue, str) and queue.strip()):
        messages.append(
            _error(f"{SETTINGS_NAME}['DEAD_LETTER_QUEUE'] must be None or a queue name.", "E043")
        )
    return messages
