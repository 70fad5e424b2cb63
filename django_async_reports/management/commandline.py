"""What the operators' commands share: finding users and reports, errors, JSON output.

Every error a command can meet in normal use (an unknown id, type or user,
parameters the generator refuses, a report in the wrong state) becomes a
``CommandError`` in words: exit code 1, no traceback.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder
from rest_framework.exceptions import ValidationError

from ..exceptions import (
    InvalidReportState,
    LimitExceeded,
    NotRegistered,
    PriorityNotAllowed,
    ReportTypeNotAllowed,
)
from ..models import Report
from ..registry import registry


def to_json(value: Any, *, indent: int | None = 2) -> str:
    """``value`` as one JSON document (dates, UUIDs and decimals as strings); one line
    with ``indent=None``."""
    return json.dumps(value, cls=DjangoJSONEncoder, indent=indent, sort_keys=True)


def find_user(value: str) -> Any:
    """The user whose username (``USERNAME_FIELD``) or primary key is ``value``."""
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: value}).first()
    if user is None and value.isdigit():
        user = user_model._default_manager.filter(pk=int(value)).first()
    if user is None:
        raise CommandError(f"No user with the username or id {value!r}.")
    return user


def find_report(value: str) -> Report:
    """The report whose id is ``value``."""
    try:
        report_id = uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a report id (a UUID).") from None
    report = Report.objects.select_related("user").filter(pk=report_id).first()
    if report is None:
        raise CommandError(f"No report with the id {value}.")
    return report


def check_report_type(value: str) -> str:
    """``value`` if a generator is registered under it."""
    if value not in registry:
        known = ", ".join(sorted(generator.report_type for generator in registry))
        raise CommandError(f"Unknown report type {value!r}. Registered types: {known}.")
    return value


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` as a dict; a value that parses as JSON is taken as JSON, else as text.

    ``count=5`` gives the number 5, ``tags=["a","b"]`` a list, ``name=abc`` the string ``abc``
    (quote it, ``name='"5"'``, to pass the text "5").
    """
    parameters: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CommandError(f"--param takes key=value, not {pair!r}.")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


def validation_messages(detail: Any, prefix: str = "") -> list[str]:
    """A DRF ``ValidationError.detail`` as ``"field: message"`` lines."""
    if isinstance(detail, Mapping):
        lines = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            lines += validation_messages(
                value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}"
            )
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in validation_messages(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    """Turn the service layer's refusals into ``CommandError`` with their words."""
    try:
        yield
    except ValidationError as exc:
        raise CommandError(
            "Invalid request: " + "; ".join(validation_messages(exc.detail))
        ) from exc
    except NotRegistered as exc:
        raise CommandError(str(exc)) from exc
    except (
        InvalidReportState,
        LimitExceeded,
        PriorityNotAllowed,
        ReportTypeNotAllowed,
    ) as exc:
        raise CommandError(str(exc)) from exc


def report_as_dict(report: Report, *, detail: bool = False) -> dict[str, Any]:
    """What the commands print of a report; ``detail`` adds parameters, errors and the file."""
    data: dict[str, Any] = {
        "id": str(report.pk),
        "title": report.title,
        "report_type": report.report_type,
        "status": report.status,
        "priority": report.priority,
        "user": {"id": report.user_id, "username": report.user.get_username()},
        "format": report.format,
        "compress": report.compress,
        "progress": report.progress,
        "progress_message": report.progress_message,
        "row_count": (report.result_data or {}).get("row_count"),
        "created_at": report.created_at,
        "started_at": report.started_at,
        "completed_at": report.completed_at,
    }
    if detail:
        data |= {
            "parameters": report.parameters,
            "error_message": report.error_message,
            "error_detail": report.error_detail,
            "retry_count": report.retry_count,
            "attempt": report.attempt,
            "worker_losses": report.worker_losses,
            "celery_task_id": report.celery_task_id,
            "next_step": report.next_step,
            "next_step_at": report.next_step_at,
            "file": report.result_file.name or None,
            "result_data": report.result_data,
            "send_email": report.send_email,
            "webhook": bool(report.webhook_url),  # its URL may carry a token: not printed
            "expires_at": report.expires_at,
            "updated_at": report.updated_at,
        }
    return data
