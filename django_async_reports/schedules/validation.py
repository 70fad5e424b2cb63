"""The one validator of schedules, for the API, the admin and the service functions.

:func:`validate_schedule` holds every rule a schedule meets, so that a rule and
its message exist once. Adapters parse, the validator judges: the serializer's
fields turn JSON into Python values and the admin form's fields do the same for
HTML inputs (their parse errors are theirs); every rule on the values is
checked here, on the state the schedule will have once saved. A value of the
wrong Python type, as a direct caller may pass, fails the rule it breaks.

Three values depend on the world outside the schedule and may stop passing
after they were saved: the parameters (the generator may change), the webhook
URL (``WEBHOOK_ALLOWED_NETWORKS``, ``WEBHOOK_ALLOWED_PORTS``, DNS) and the
e-mail recipients (``EMAIL_ALLOWED_DOMAINS``, ``EMAIL_RECIPIENT_POLICY``).
They are checked when they, or what they depend on, change; a stored value
that no longer passes does not block an unrelated edit, and fails the run or
the send that meets it (a refused recipient is left out), where it is
recorded. The rules a schedule shares with ad-hoc report requests (a known
report type, a parameters object, a webhook URL) are in
:mod:`django_async_reports.services.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework.exceptions import ValidationError

from .. import services
from ..conf import report_settings
from ..models import Report, ReportSchedule
from ..registry import registry
from ..services.rules import (
    check_parameters_object,
    check_priority,
    check_recipients,
    check_report_type,
    check_webhook_url,
)
from . import times, timing_fields, variables

__all__ = [
    "EDITABLE_FIELDS",
    "PARAMETER_FIELDS",
    "TIMING_FIELDS",
    "validate_parameters",
    "validate_schedule",
]

Frequency = ReportSchedule.Frequency

#: The fields callers set, in the order the API shows them; the others are
#: written by the package (``webhook_secret``, ``next_run_at``...).
EDITABLE_FIELDS: tuple[str, ...] = (
    "report_type",
    "title",
    "parameters",
    "priority",
    "format",
    "compress",
    "frequency",
    "cron_expression",
    "time_of_day",
    "weekday",
    "day_of_month",
    "timezone",
    "enabled",
    "send_email",
    "email_recipients",
    "webhook_url",
    "skip_if_empty",
)
#: Changing one of these recomputes ``next_run_at``.
TIMING_FIELDS = frozenset(
    {"frequency", "cron_expression", "time_of_day", "weekday", "day_of_month", "timezone"}
)
#: Changing one of these validates the parameters again.
PARAMETER_FIELDS = frozenset({"report_type", "parameters", "timezone"})

_BOOLEAN_FIELDS = ("compress", "enabled", "send_email", "skip_if_empty")
_TITLE_LENGTH = 255  # the column's
_EMAIL_LENGTH = 254  # an address's, RFC 5321


# -- parameters ------------------------------------------------------------------------
def validate_parameters(
    report_type: str, parameters: Any, tz_name: str, user: Any
) -> dict[str, Any]:
    """Check ``parameters`` (with template variables) and return them to store unrendered.

    Unknown variables are rejected; a sample rendering at the current time in
    ``tz_name`` is then validated by the generator's parameters serializer for
    ``user``. Raises DRF ``ValidationError`` with errors under ``parameters``
    (or ``report_type`` / ``timezone`` when those are wrong).
    """
    try:
        generator_class = registry.get(check_report_type(report_type))
    except ValidationError as exc:
        raise ValidationError({"report_type": exc.detail}) from None
    try:
        parameters = check_parameters_object(parameters)
    except ValidationError as exc:
        raise ValidationError({"parameters": exc.detail}) from None
    unknown = variables.find_unknown(parameters)
    if unknown:
        raise ValidationError(
            {
                "parameters": [
                    f"Unknown template variable(s): {', '.join(unknown)}. "
                    f"Known variables: {', '.join(variables.VARIABLES)}."
                ]
            }
        )
    try:
        tz = times.get_zone(times.validate_timezone(tz_name))
    except ValueError as exc:
        raise ValidationError({"timezone": [str(exc)]}) from exc
    sample = variables.sample_render(parameters, tz)
    try:
        generator_class.clean_parameters(sample, {"user": user})
    except ValidationError as exc:
        raise ValidationError({"parameters": exc.detail}) from exc
    return parameters


# -- the schedule ----------------------------------------------------------------------
def validate_schedule(
    data: Mapping[str, Any],
    *,
    owner: Any,
    instance: ReportSchedule | None = None,
    resolve_webhook_host: bool = True,
    refuse_unused_fields: bool = False,
) -> dict[str, Any]:
    """Check a schedule to create or change, and return every editable field as to be saved.

    ``data`` maps editable field names (:data:`EDITABLE_FIELDS`) to Python
    values: the fields to set. The others keep ``instance``'s stored values
    (an update), or take the model's defaults (a create, ``instance=None``).
    ``owner`` is the user the parameters are validated for (the schedule's
    owner; on create, the user it will belong to). ``instance`` is read, never
    changed.

    Returns a new dict of all the editable fields, cleaned: text stripped, the
    title defaulted to the generator's label, the format resolved, the cron
    expression normalised, duplicate recipients dropped (case-insensitively,
    the first spelling kept), a weekly schedule's ``weekday`` defaulted to
    Monday and a monthly one's ``day_of_month`` to the 1st, and the fields the
    frequency does not use cleared (``None``, or ``""`` for the cron expression).

    The recipients policy judges the recipients for ``owner`` on create and
    whenever the list changes (``EMAIL_ALLOWED_DOMAINS``, ``EMAIL_RECIPIENT_POLICY``).
    ``resolve_webhook_host`` resolves a new webhook URL's host name and refuses
    it unless every address is public (a literal address is always checked);
    the service functions pass False, as documented. With
    ``refuse_unused_fields`` (the API, which is sent only what a client
    means), a field ``data`` gives a value that the frequency does not use is
    an error instead of being cleared.

    Raises DRF ``ValidationError`` whose detail is a dict of field name to
    messages (a nested dict for ``parameters`` errors of the generator, and
    for ``email_recipients`` errors by list index), every field checked at
    once. Raises ``TypeError`` when ``data`` names a field that is not
    editable: a programming error, not the user's.
    """
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"Unknown or read-only schedule field(s): {', '.join(unknown)}.")
    current = {name: _value_of(name, data, instance) for name in EDITABLE_FIELDS}
    cleaned: dict[str, Any] = {}
    errors: dict[str, Any] = {}

    def check(name: str, rule: Any, *args: Any, **kwargs: Any) -> None:
        try:
            cleaned[name] = rule(*args, **kwargs)
        except ValidationError as exc:
            errors[name] = exc.detail

    # The owner's permissions are asked for what changes: a schedule kept as it
    # is stays editable (each run asks them again, and fails if they are gone).
    stored_type = instance.report_type if instance is not None else None
    if current["report_type"] == stored_type:
        check("report_type", check_report_type, current["report_type"])
    else:
        check("report_type", check_report_type, current["report_type"], owner)
    check("title", _clean_title, current["title"])
    stored_priority = instance.priority if instance is not None else None
    check("priority", _clean_priority, current["priority"], owner, stored_priority)
    check("frequency", _clean_choice, current["frequency"], Frequency.values)
    for name in _BOOLEAN_FIELDS:
        check(name, _clean_boolean, current[name])
    check("time_of_day", timing_fields.clean_time, current["time_of_day"])
    check("timezone", timing_fields.clean_timezone, current["timezone"])
    if "frequency" in cleaned:
        stored_cron = instance.cron_expression if instance is not None else None
        timing_fields.clean_frequency_fields(
            cleaned["frequency"],
            current,
            data,
            cleaned,
            errors,
            refuse=refuse_unused_fields,
            stored_cron=stored_cron,
        )
    check(
        "email_recipients",
        _clean_recipients,
        current["email_recipients"],
        send_email=cleaned.get("send_email", False),
    )
    if "email_recipients" in cleaned and _recipients_changed(cleaned, instance):
        check("email_recipients", check_recipients, cleaned["email_recipients"], owner)
    if instance is None or current["webhook_url"] != instance.webhook_url:
        check(
            "webhook_url",
            check_webhook_url,
            current["webhook_url"],
            resolve_host=resolve_webhook_host,
        )
    else:
        cleaned["webhook_url"] = instance.webhook_url
    if "report_type" in cleaned:
        _clean_for_report_type(current, instance, owner, cleaned, errors)
    _check_column_lengths(cleaned, errors)
    if errors:
        raise ValidationError(errors)
    return {name: cleaned[name] for name in EDITABLE_FIELDS}


def _recipients_changed(cleaned: dict[str, Any], instance: ReportSchedule | None) -> bool:
    """On create, or a list that changed: the recipients policy judges the whole list then."""
    if instance is None:
        return True
    stored = [str(a).strip().lower() for a in instance.email_recipients or []]
    return [a.lower() for a in cleaned["email_recipients"]] != stored


def _check_column_lengths(cleaned: dict[str, Any], errors: dict[str, Any]) -> None:
    """A text longer than its column is a field error, never a database error (a 500)."""
    for name, value in cleaned.items():
        limit = getattr(ReportSchedule._meta.get_field(name), "max_length", None)
        if name not in errors and isinstance(value, str) and limit and len(value) > limit:
            errors[name] = [f"Ensure this field has no more than {limit} characters."]


def _value_of(name: str, data: Mapping[str, Any], instance: ReportSchedule | None) -> Any:
    """The value ``name`` will have once saved, before cleaning: sent, else stored, else default."""
    if name in data:
        return data[name]
    if instance is not None:
        return getattr(instance, name)
    return ReportSchedule._meta.get_field(name).get_default()  # type: ignore[union-attr]


def _clean_title(value: Any) -> str:
    """Stripped text of at most 255 characters; blank is filled in later with the label."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("Give the title as text.", code="invalid")
    value = value.strip()
    if len(value) > _TITLE_LENGTH:
        raise ValidationError(
            f"Ensure this field has no more than {_TITLE_LENGTH} characters.", code="max_length"
        )
    return value


def _clean_priority(value: Any, owner: Any, stored: str | None) -> str:
    """A known priority the owner may ask for (a stored one, kept as it is, is not asked again)."""
    value = _clean_choice(value, Report.Priority.values)
    if value != stored:
        check_priority(value, owner)
    return value


def _clean_choice(value: Any, choices: list[str]) -> str:
    if value not in choices:
        raise ValidationError(
            f'"{value}" is not a valid choice; use one of {", ".join(choices)}.',
            code="invalid_choice",
        )
    return str(value)


def _clean_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("Must be a valid boolean.", code="invalid")
    return value


def _clean_recipients(value: Any, *, send_email: bool) -> list[str]:
    """Valid addresses without duplicates, within ``MAX_EMAIL_RECIPIENTS``; one if e-mail is on."""
    if not isinstance(value, (list, tuple)):
        raise ValidationError("Give a list of e-mail addresses.", code="not_a_list")
    by_index: dict[str, list[str]] = {}
    unique: dict[str, str] = {}
    for index, address in enumerate(value):
        address = address.strip() if isinstance(address, str) else address
        if not isinstance(address, str) or len(address) > _EMAIL_LENGTH:
            by_index[str(index)] = ["Enter a valid email address."]
            continue
        try:
            validate_email(address)
        except DjangoValidationError:
            by_index[str(index)] = ["Enter a valid email address."]
            continue
        unique.setdefault(address.lower(), address)
    if by_index:
        raise ValidationError(by_index)
    limit = int(report_settings.MAX_EMAIL_RECIPIENTS)
    if len(unique) > limit:
        raise ValidationError(
            f"At most {limit} recipients are allowed ({len(unique)} given).", code="max_length"
        )
    if send_email and not unique:
        raise ValidationError(
            "Give at least one recipient when send_email is true (add your own address "
            "to receive the report yourself).",
            code="required",
        )
    return list(unique.values())


def _clean_for_report_type(
    current: Mapping[str, Any],
    instance: ReportSchedule | None,
    owner: Any,
    cleaned: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    """What depends on the (registered) generator: title, format and parameters."""
    report_type = cleaned["report_type"]
    if cleaned.get("title") == "":
        cleaned["title"] = str(registry.get(report_type).get_label())[:_TITLE_LENGTH]
    fmt = current["format"]
    if fmt is not None and not isinstance(fmt, str):
        errors["format"] = ["Give the format as text, such as csv."]
    else:
        try:
            cleaned["format"] = services.resolve_format(report_type, (fmt or "").strip() or None)
        except ValidationError as exc:
            detail = exc.detail
            errors.update(detail if isinstance(detail, dict) else {"format": detail})

    parameters = current["parameters"]
    if parameters is None:
        parameters = {}
    changed = instance is None or any(
        cleaned.get(name, current[name]) != getattr(instance, name) for name in PARAMETER_FIELDS
    )
    if not changed:
        # Stored and unchanged: a generator's change must not block an unrelated edit.
        cleaned["parameters"] = parameters
        return
    if "timezone" not in cleaned:
        return  # its own error says why; the sample rendering needs the zone
    try:
        cleaned["parameters"] = validate_parameters(
            report_type, parameters, cleaned["timezone"], owner
        )
    except ValidationError as exc:
        detail = exc.detail
        errors.update(detail if isinstance(detail, dict) else {"parameters": detail})
