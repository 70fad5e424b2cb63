"""The inputs of a report type's parameters form, read from its ``parameters_class``.

The form is built from the generator's parameters serializer, the same source
as the type's JSON Schema (``parameters_schema`` in ``GET /types/``), so it needs
no optional extra. Each DRF field becomes one :class:`FormField`: a date picker,
a select, a number with its bounds, a checkbox... and the page's script turns
the inputs back into the JSON the API validates, so a bad value gets the
server's own message at the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty

__all__ = ["FormField", "form_fields"]


@dataclass(frozen=True)
class FormField:
    """One input of the parameters form; ``widget`` names the template branch that draws it."""

    name: str
    label: str
    widget: str  # text, textarea, number, date, datetime, time, select, checkboxes, checkbox...
    kind: str  # how the script reads it: string, integer, number, boolean, list, json
    required: bool = False
    help_text: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    initial: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)  # min, max, step, maxlength...


# (field class, widget, kind, input type for the plain <input> widgets); the
# first match wins, so subclasses come before their bases.
_WIDGETS: list[tuple[type, str, str]] = [
    (serializers.BooleanField, "checkbox", "boolean"),
    (serializers.MultipleChoiceField, "checkboxes", "list"),
    (serializers.ChoiceField, "select", "string"),
    (serializers.DateTimeField, "datetime", "string"),
    (serializers.DateField, "date", "string"),
    (serializers.TimeField, "time", "string"),
    (serializers.IntegerField, "number", "integer"),
    (serializers.FloatField, "number", "number"),
    (serializers.DecimalField, "number", "number"),
    (serializers.EmailField, "email", "string"),
    (serializers.URLField, "url", "string"),
    (serializers.CharField, "text", "string"),
    (serializers.ListField, "textarea", "json"),
    (serializers.DictField, "textarea", "json"),
    (serializers.JSONField, "textarea", "json"),
    (serializers.BaseSerializer, "textarea", "json"),
]


def form_fields(generator_class: Any) -> list[FormField]:
    """The form's inputs for ``generator_class``, in the serializer's order; [] without
    ``parameters_class`` (the type takes no parameters the page can ask for)."""
    if generator_class.parameters_class is None:
        return []
    fields = generator_class.parameters_class().fields
    return [_form_field(name, f) for name, f in fields.items() if not f.read_only]


def _form_field(name: str, drf_field: Any) -> FormField:
    widget, kind = "text", "string"
    for cls, widget_name, kind_name in _WIDGETS:
        if isinstance(drf_field, cls):
            widget, kind = widget_name, kind_name
            break
    label = str(drf_field.label or name.replace("_", " ").capitalize())
    choices: list[tuple[str, str]] = []
    if widget in ("select", "checkboxes"):
        choices = [(str(value), str(text)) for value, text in drf_field.choices.items()]
    return FormField(
        name=name,
        label=label,
        widget=widget,
        kind=kind,
        required=bool(drf_field.required),
        help_text=str(drf_field.help_text or ""),
        choices=choices,
        initial=_initial(drf_field),
        attrs=_attrs(drf_field, widget),
    )


def _initial(drf_field: Any) -> Any:
    default = drf_field.default
    if default is empty or default is None or callable(default):
        return None
    if isinstance(default, (set, frozenset, list, tuple)):
        return [str(value) for value in default]
    return default


def _attrs(drf_field: Any, widget: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if widget == "number":
        for attr, key in (("min_value", "min"), ("max_value", "max")):
            value = getattr(drf_field, attr, None)
            if value is not None:
                attrs[key] = value
        if isinstance(drf_field, serializers.IntegerField):
            attrs["step"] = 1
        elif isinstance(drf_field, serializers.DecimalField) and drf_field.decimal_places:
            attrs["step"] = str(Decimal(1).scaleb(-drf_field.decimal_places))
        else:
            attrs["step"] = "any"
    max_length = getattr(drf_field, "max_length", None)
    if widget in ("text", "email", "url") and max_length:
        attrs["maxlength"] = max_length
    return attrs
