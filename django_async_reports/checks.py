"""System checks for the ``ASYNC_REPORTS`` settings, with stable ids."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, SETTINGS_NAME, report_settings

# Zero is a valid value for these (no retry, no delay, write at every chunk)...
_NON_NEGATIVE_NUMBERS = (
    "MAX_RETRIES",
    "RETRY_COUNTDOWN",
    "PROGRESS_INTERVAL",
    "CANCEL_CHECK_INTERVAL",
)
# ...but not for these.
_POSITIVE_NUMBERS = (
    "SOFT_TIME_LIMIT",
    "RETENTION_SECONDS",
    "PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "RECENT_LIMIT",
    "MAX_PARAMETERS_BYTES",
    "PROGRESS_CACHE_TIMEOUT",
)
_NON_EMPTY_STRINGS = (
    "QUEUE",
    "ROUTING_KEY",
    "HIGH_PRIORITY_QUEUE",
    "HIGH_PRIORITY_ROUTING_KEY",
    "EXCHANGE",
    "STORAGE",
    "STORAGE_PREFIX",
    "CACHE",
    "CACHE_KEY_PREFIX",
)


def _error(msg: str, id_: str, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, obj=SETTINGS_NAME, id=f"django_async_reports.{id_}")


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate every ASYNC_REPORTS value a worker or the API would trip over later."""
    errors: list[CheckMessage] = []
    try:
        user = report_settings.user_settings
    except ImproperlyConfigured as exc:
        return [_error(str(exc), "E001", f"Valid keys: {', '.join(sorted(DEFAULTS))}.")]

    def value(name: str) -> Any:
        return user.get(name, DEFAULTS[name])

    for names, minimum, words in (
        (_NON_NEGATIVE_NUMBERS, 0, ">= 0"),
        (_POSITIVE_NUMBERS, 1e-9, "> 0"),
    ):
        for name in names:
            v = value(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
                errors.append(
                    _error(
                        f"{SETTINGS_NAME}[{name!r}] must be a number {words}, not {v!r}.", "E002"
                    )
                )
    for name in _NON_EMPTY_STRINGS:
        v = value(name)
        if not isinstance(v, str) or not v.strip():
            errors.append(_error(f"{SETTINGS_NAME}[{name!r}] must be a non-empty string.", "E003"))
    if value("QUEUE") == value("HIGH_PRIORITY_QUEUE"):
        errors.append(_error("QUEUE and HIGH_PRIORITY_QUEUE must differ.", "E004"))

    max_priority = value("MAX_PRIORITY")
    priorities = value("MESSAGE_PRIORITIES")
    if not isinstance(max_priority, int) or not 1 <= max_priority <= 255:
        errors.append(
            _error(
                "MAX_PRIORITY must be an integer from 1 to 255.",
                "E005",
                "RabbitMQ recommends at most 10.",
            )
        )
    elif (
        not isinstance(priorities, dict)
        or set(priorities) != {"urgent", "high", "normal", "low"}
        or any(not isinstance(p, int) or not 0 <= p <= max_priority for p in priorities.values())
    ):
        errors.append(
            _error(
                "MESSAGE_PRIORITIES must map urgent, high, normal and low to integers "
                f"from 0 to MAX_PRIORITY ({max_priority}).",
                "E006",
            )
        )
    elif not priorities["high"] > priorities["normal"] > priorities["low"]:
        errors.append(_error("MESSAGE_PRIORITIES must rank high > normal > low.", "E007"))

    storages = getattr(settings, "STORAGES", {}) or {}
    if value("STORAGE") not in storages:
        errors.append(
            _error(
                f"{SETTINGS_NAME}['STORAGE'] is {value('STORAGE')!r}, "
                "which is not a STORAGES alias.",
                "E008",
                f"Define it in STORAGES (aliases: {', '.join(sorted(storages)) or 'none'}).",
            )
        )
    caches = getattr(settings, "CACHES", {}) or {}
    cache_alias = value("CACHE")
    if cache_alias not in caches:
        errors.append(
            _error(
                f"{SETTINGS_NAME}['CACHE'] is {cache_alias!r}, which is not a CACHES alias.", "E009"
            )
        )
    elif "locmem" in str(caches[cache_alias].get("BACKEND", "")).lower() and not settings.DEBUG:
        errors.append(
            Warning(
                f"Progress is cached in the local-memory cache {cache_alias!r}, which workers and "
                "web processes do not share: the progress endpoint will fall back to the database.",
                hint="Point ASYNC_REPORTS['CACHE'] at a Redis (or other shared) cache.",
                obj=SETTINGS_NAME,
                id="django_async_reports.W001",
            )
        )
    for name in ("PERMISSION_CLASSES", "AUTHENTICATION_CLASSES"):
        try:
            getattr(report_settings, name)
        except ImproperlyConfigured as exc:
            errors.append(_error(str(exc), "E010"))
    if "rest_framework" not in settings.INSTALLED_APPS:
        errors.append(_error("'rest_framework' must be in INSTALLED_APPS.", "E011"))
    return errors
