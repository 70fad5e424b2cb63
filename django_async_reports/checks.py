"""System checks for the ``ASYNC_REPORTS`` settings, with stable ids."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, SETTINGS_NAME, report_settings
from .delivery.network import includes_public_addresses

# Zero is a valid value for these (no retry, no delay, write at every chunk)...
_NON_NEGATIVE_NUMBERS = (
    "MAX_RETRIES",
    "RETRY_COUNTDOWN",
    "PROGRESS_INTERVAL",
    "CANCEL_CHECK_INTERVAL",
    "WEBHOOK_RETRY_BACKOFF",
    "ORPHAN_GRACE_SECONDS",
)
# ...but not for these.
_POSITIVE_NUMBERS = (
    "MAX_WORKER_LOSSES",
    "SOFT_TIME_LIMIT",
    "RETENTION_SECONDS",
    "PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "RECENT_LIMIT",
    "PAGE_POLL_SECONDS",
    "MAX_PARAMETERS_BYTES",
    "PROGRESS_CACHE_TIMEOUT",
    "SCHEDULE_TICK_INTERVAL",
    "WEBHOOK_TIMEOUT",
    "DOWNLOAD_URL_EXPIRES",
)
# Counts: whole numbers, at least this much (E012). An attachment limit of 0
# is meaningful (always link the file, never attach it).
_INTEGERS = {
    "SCHEDULE_BATCH_SIZE": 1,
    "MAX_EMAIL_RECIPIENTS": 1,
    "WEBHOOK_MAX_ATTEMPTS": 1,
    "EMAIL_ATTACHMENT_MAX_BYTES": 0,
    "CLEANUP_BATCH_SIZE": 1,
    "PDF_PREVIEW_ROWS": 0,
    "REUSE_WINDOW_SECONDS": 0,
    "LIMIT_RETRY_AFTER": 1,
}
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
        value = report_settings.as_written()
    except ImproperlyConfigured as exc:
        return [_error(str(exc), "E001", f"Valid keys: {', '.join(sorted(DEFAULTS))}.")]

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
    else:
        errors.extend(_check_s3_object_parameters(value("STORAGE"), storages[value("STORAGE")]))
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

    for name, least in _INTEGERS.items():
        v = value(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            errors.append(
                _error(
                    f"{SETTINGS_NAME}[{name!r}] must be an integer >= {least}, not {v!r}.", "E012"
                )
            )
    errors.extend(_check_formats_and_storage(value))
    errors.extend(_check_allowed_networks(value("WEBHOOK_ALLOWED_NETWORKS")))
    secret = value("WEBHOOK_SECRET")
    if secret is not None and (not isinstance(secret, str) or not secret.strip()):
        errors.append(
            _error(
                f"{SETTINGS_NAME}['WEBHOOK_SECRET'] must be None or a non-empty string.",
                "E014",
                "None derives the secrets of ad-hoc reports' webhooks from SECRET_KEY.",
            )
        )
    errors.extend(_check_email_link_expires(value("EMAIL_LINK_EXPIRES")))
    errors.extend(_check_s3_streaming(value))
    errors.extend(_check_gzip_level(value("GZIP_LEVEL")))
    return errors


def _check_s3_streaming(value: Any) -> list[CheckMessage]:
    """E060: S3_PART_SIZE is a whole number of bytes S3 takes as a part; E061: S3_STREAMING;
    E062: COPY_MIN_ROWS (the fast path's, checked here with the other output settings)."""
    from .services.s3_stream import MAX_PART_SIZE, MIN_PART_SIZE

    messages: list[CheckMessage] = []
    size = value("S3_PART_SIZE")
    if (
        isinstance(size, bool)
        or not isinstance(size, int)
        or not MIN_PART_SIZE <= size <= MAX_PART_SIZE
    ):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['S3_PART_SIZE'] must be an integer number of bytes from "
                f"{MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB), not {size!r}.",
                "E060",
                "S3 refuses a part smaller than 5 MiB, but the last, and larger than 5 GiB.",
            )
        )
    if not isinstance(value("S3_STREAMING"), bool):
        messages.append(_error(f"{SETTINGS_NAME}['S3_STREAMING'] must be True or False.", "E061"))
    minimum = value("COPY_MIN_ROWS")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['COPY_MIN_ROWS'] must be a whole number of rows, 0 or more, "
                f"not {minimum!r}.",
                "E062",
            )
        )
    return messages


def _check_gzip_level(level: Any) -> list[CheckMessage]:
    """E027: GZIP_LEVEL is None or an integer from 1 to 9 (zlib's scale)."""
    if level is None or (
        isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= 9
    ):
        return []
    return [
        _error(
            f"{SETTINGS_NAME}['GZIP_LEVEL'] must be None or an integer from 1 to 9, not {level!r}.",
            "E027",
            "None picks python-isal's level 3 when the fast-gzip extra is installed, "
            "zlib's level 6 otherwise.",
        )
    ]


# SigV4 refuses presigned URLs valid longer than 7 days.
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600


def _check_email_link_expires(expires: Any) -> list[CheckMessage]:
    """E017: EMAIL_LINK_EXPIRES is None or a whole number of seconds SigV4 can sign."""
    if expires is None or (
        isinstance(expires, int)
        and not isinstance(expires, bool)
        and 1 <= expires <= MAX_PRESIGNED_SECONDS
    ):
        return []
    return [
        _error(
            f"{SETTINGS_NAME}['EMAIL_LINK_EXPIRES'] must be None or an integer number of "
            f"seconds from 1 to {MAX_PRESIGNED_SECONDS} (7 days), not {expires!r}.",
            "E017",
            "S3 (SigV4) refuses presigned URLs valid longer than 7 days; None puts no "
            "presigned URL in e-mails.",
        )
    ]


def _check_s3_object_parameters(alias: str, config: Any) -> list[CheckMessage]:
    """W003: django-storages' S3 backend would store ``.gz`` files with Content-Encoding: gzip.

    It guesses ``Content-Encoding`` from the key unless ``object_parameters``
    names a ``ContentType``; clients then unpack a compressed report on
    download and save plain CSV under a ``.csv.gz`` name.
    """
    if not isinstance(config, dict) or "s3" not in str(config.get("BACKEND", "")).lower():
        return []
    options = config.get("OPTIONS") or {}
    parameters = options.get("object_parameters") or {}
    # Only a ContentType stops the guess: django-storages still sets
    # ContentEncoding itself whenever ContentType is missing.
    if "ContentType" in parameters:
        return []
    return [
        Warning(
            f"STORAGES[{alias!r}] is an S3 storage without object_parameters['ContentType']: "
            "compressed reports would be stored with Content-Encoding: gzip and arrive "
            "uncompressed under a .gz name.",
            hint='Add "object_parameters": {"ContentType": "application/octet-stream"} to its '
            "OPTIONS (downloads set the real content type on the presigned URL).",
            obj=SETTINGS_NAME,
            id="django_async_reports.W003",
        )
    ]


def _check_formats_and_storage(value: Any) -> list[CheckMessage]:
    """DEFAULT_FORMAT is an installed format (E015); CLEANUP_INTERVAL, DOWNLOAD_REDIRECT (E016);
    TASK_RESULTS (E018)."""
    from .writers import writer_classes

    messages: list[CheckMessage] = []
    fmt = value("DEFAULT_FORMAT")
    writers = writer_classes()
    if fmt not in writers:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['DEFAULT_FORMAT'] is {fmt!r}, which is not a format.",
                "E015",
                f"Use one of {', '.join(writers)}.",
            )
        )
    elif not writers[fmt].is_available():
        messages.append(
            _error(
                f"{SETTINGS_NAME}['DEFAULT_FORMAT'] is {fmt!r}, whose writer needs packages "
                "that are not installed.",
                "E015",
                f'pip install "django-async-reporting[{writers[fmt].extra}]".',
            )
        )
    interval = value("CLEANUP_INTERVAL")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0
    ):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['CLEANUP_INTERVAL'] must be a number of seconds > 0, or None "
                f"to leave cleanup to the cleanup_reports command; not {interval!r}.",
                "E016",
            )
        )
    if not isinstance(value("TASK_RESULTS"), bool):
        messages.append(_error(f"{SETTINGS_NAME}['TASK_RESULTS'] must be True or False.", "E018"))
    if value("DOWNLOAD_REDIRECT") not in (None, True, False):
        messages.append(
            _error(
                f"{SETTINGS_NAME}['DOWNLOAD_REDIRECT'] must be None (automatic), True or False.",
                "E016",
            )
        )
    return messages


def _check_allowed_networks(networks: Any) -> list[CheckMessage]:
    """WEBHOOK_ALLOWED_NETWORKS: a list of CIDR strings (E013), none of them public (W002)."""
    name = f"{SETTINGS_NAME}['WEBHOOK_ALLOWED_NETWORKS']"
    if not isinstance(networks, (list, tuple)):
        return [
            _error(
                f"{name} must be a list of networks such as '10.0.0.0/8', not {networks!r}.",
                "E013",
            )
        ]
    messages: list[CheckMessage] = []
    for entry in networks:
        try:
            if not isinstance(entry, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
                raise ValueError("not a string")
            # As delivery.network.allowed_networks() reads it at send time.
            network = ipaddress.ip_network(str(entry), strict=False)
        except ValueError as exc:
            messages.append(
                _error(
                    f"{name} has an invalid network {entry!r}: {exc}.",
                    "E013",
                    "Give CIDR strings, such as '127.0.0.0/8' or 'fd00::/8'.",
                )
            )
            continue
        if includes_public_addresses(network):
            wide = network.prefixlen == 0
            messages.append(
                Warning(
                    f"{name} lists {entry!r}, which "
                    + (
                        "lets webhooks reach every loopback, private and link-local address: "
                        "the protection against requests into your network is off."
                        if wide
                        else "includes public addresses. Public addresses are always allowed; "
                        "this setting only opens non-public ones, so a network this wide "
                        "is probably a mistake."
                    ),
                    hint="List only the loopback or private networks webhooks must reach, "
                    "such as '10.1.2.0/24'.",
                    obj=SETTINGS_NAME,
                    id="django_async_reports.W002",
                )
            )
    return messages
