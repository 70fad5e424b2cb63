"""Rules of a report request's fields, shared by the reports API and the schedules.

Each takes a Python value and returns it cleaned, or raises DRF
``ValidationError`` with the message users see, so a report request and a
schedule answer a broken rule with the same words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from rest_framework.exceptions import ValidationError

from ..conf import report_settings
from ..delivery import validate_webhook_url
from ..delivery.policy import is_allowed_recipient, refusal_message, refused_recipients
from ..registry import registry
from . import permissions


def check_report_type(value: Any, user: Any = None) -> str:
    """``value`` if a generator is registered under it (that ``user`` may run), else an error.

    The error lists the known types. With ``user``, a type their generator's
    ``has_permission`` refuses is neither listed nor told apart from an unknown
    one, as ``GET /types/`` does not list it.
    """
    known_types = registry if user is None else permissions.runnable_types(user)
    if not isinstance(value, str) or value not in {g.report_type for g in known_types}:
        known = ", ".join(g.report_type for g in known_types) or "none"
        raise ValidationError(
            f'"{value}" is not a known report type. Known types: {known}.', code="invalid_choice"
        )
    return value


def check_priority(value: Any, user: Any) -> str:
    """``value`` if ``user`` may ask for that priority, else an error naming the allowed ones."""
    if not permissions.may_ask_for(user, value):
        allowed = permissions.allowed_priorities(user)
        raise ValidationError(
            f'You may not ask for "{value}" priority. Allowed: {", ".join(allowed)}.',
            code="permission_denied",
        )
    return str(value)


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value: 0 for a scalar, 1 for a flat list or object.

    Iterative: a hostile value nested thousands deep must not exhaust the stack.
    """
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_parameters_object(value: Any) -> dict[str, Any]:
    """``value`` as a dict if it is a JSON object within the size and depth limits, else an error.

    ``MAX_PARAMETERS_BYTES`` of JSON, lists and objects nested at most
    ``MAX_PARAMETERS_DEPTH`` levels (the parameters object itself is one).
    """
    if not isinstance(value, Mapping):
        raise ValidationError("Expected a JSON object.", code="invalid")
    depth = report_settings.MAX_PARAMETERS_DEPTH
    # First: measuring the size of a value nested thousands deep would recurse.
    if depth is not None and _depth(value) > int(depth):
        raise ValidationError(
            f"Parameters may nest lists and objects at most {int(depth)} levels deep.",
            code="max_depth",
        )
    limit = int(report_settings.MAX_PARAMETERS_BYTES)
    if len(json.dumps(value, default=str)) > limit:
        raise ValidationError(
            f"Parameters must be at most {limit} bytes of JSON.", code="max_length"
        )
    return dict(value)


def check_webhook_url(value: Any, *, resolve_host: bool) -> str:
    """The stripped URL ("" for none) if webhooks may be POSTed to it, else an error.

    An ``http``/``https`` URL without credentials whose host is, or with
    ``resolve_host`` resolves to, public addresses only
    (:func:`~django_async_reports.delivery.validate_webhook_url`; checked again
    at each send).
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("Enter a valid http:// or https:// URL.", code="invalid")
    value = value.strip()
    if not value:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(value)
    except DjangoValidationError:
        raise ValidationError("Enter a valid http:// or https:// URL.", code="invalid") from None
    try:
        return validate_webhook_url(value, resolve=resolve_host)
    except ValueError as exc:  # WebhookURLRefused: its message is meant for the user
        raise ValidationError(str(exc), code="invalid") from exc


def check_recipients(addresses: list[str], user: Any) -> list[str]:
    """``addresses`` if ``EMAIL_ALLOWED_DOMAINS`` and ``EMAIL_RECIPIENT_POLICY`` allow each one
    for ``user`` (a schedule's owner), else an error naming those refused."""
    refused = refused_recipients(addresses, user)
    if refused:
        raise ValidationError(refusal_message(refused), code="not_allowed")
    return addresses


def check_requester_email(send_email: bool, user: Any) -> bool:
    """``send_email``, unless the requester's address is one the recipients policy refuses.

    A report's own e-mail goes to its requester: ``EMAIL_ALLOWED_DOMAINS`` and
    ``EMAIL_RECIPIENT_POLICY`` decide it as any recipient (checked again at send time).
    """
    address = getattr(user, "email", "") or ""
    if send_email and address and not is_allowed_recipient(address, user):
        raise ValidationError(refusal_message([address]), code="not_allowed")
    return send_email
