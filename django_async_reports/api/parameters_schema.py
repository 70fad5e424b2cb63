"""A generator's ``parameters_class`` as JSON Schema, for ``GET /types/`` and the OpenAPI schema.

The mapping is drf-spectacular's own (the optional ``openapi`` extra), so the
schema a client reads in ``/types/`` is the one the OpenAPI document holds for
that type's ``parameters``: OpenAPI 3.0's dialect of JSON Schema (``nullable``
rather than ``"type": [..., "null"]``), with nested serializers inlined.
Without drf-spectacular there is no schema (``None``); ``describe_parameters``'
description in ``/types/`` does not need it.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["FREE_FORM_PARAMETERS", "parameters_schema", "spectacular_available"]

# A generator without ``parameters_class`` takes any JSON object as is.
FREE_FORM_PARAMETERS: dict[str, Any] = {"type": "object", "additionalProperties": {}}


def spectacular_available() -> bool:
    """Whether drf-spectacular can be imported (``pip install django-async-reporting[openapi]``)."""
    try:
        import drf_spectacular  # noqa: F401
    except ImportError:
        return False
    return True


def parameters_schema(generator_class: Any) -> dict[str, Any] | None:
    """The JSON Schema of ``generator_class``'s parameters as a request body; None without
    drf-spectacular."""
    if generator_class.parameters_class is None:
        return copy.deepcopy(FREE_FORM_PARAMETERS)
    try:
        from drf_spectacular.openapi import AutoSchema
        from drf_spectacular.plumbing import ComponentRegistry
        from rest_framework.views import APIView
    except ImportError:
        return None
    auto = AutoSchema()
    # The parts of a view's context the serializer mapping reads: a write
    # request (read-only fields left out), and a registry for nested serializers.
    auto.registry = ComponentRegistry()
    auto.method = "POST"
    auto.path = auto.path_regex = ""
    view = APIView()
    view.request = None  # type: ignore[assignment]
    auto.view = view
    serializer = generator_class.parameters_class()
    schema = auto._map_serializer(serializer, "request")
    return _inline(schema, auto.registry)


def _inline(schema: Any, components: Any) -> Any:
    """``schema`` with the ``$ref``s to ``components`` replaced by what they point to."""
    if isinstance(schema, list):
        return [_inline(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        for key, component in components._components.items():
            if key[0] == name and component.schema is not None:
                return _inline(component.schema, components)
    return {key: _inline(value, components) for key, value in schema.items()}
