"""The OpenAPI document (drf-spectacular, the ``openapi`` extra) and ``/types/``' parameters_schema.

The fuzzing of a live server over this document is ``tests/e2e/test_openapi_fuzz_e2e.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

from django_async_reports.api.openapi import report_request_component_name
from django_async_reports.api.parameters_schema import FREE_FORM_PARAMETERS, parameters_schema
from django_async_reports.registry import registry
from tests.helpers import fresh_python_output
from tests.testapp.reports import BrokenReport, SalesReport

REPORTS = "/api/v1/reports/"


def openapi_document() -> dict[str, Any]:
    """The schema drf-spectacular generates for the test project, as JSON would carry it."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(schema, default=str))


def resolve(node: Any, document: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` into ``document`` replaced by its target."""
    if isinstance(node, list):
        return [resolve(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return resolve(target, document)
    return {key: resolve(value, document) for key, value in node.items()}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_endpoint_of_reports_and_schedules_is_documented(document):
    documented = {(method, path) for path, method, _ in operations(document)}
    assert documented == {
        ("get", REPORTS),
        ("post", REPORTS),
        ("get", REPORTS + "{id}/"),
        ("post", REPORTS + "{id}/cancel/"),
        ("get", REPORTS + "{id}/download/"),
        ("get", REPORTS + "{id}/progress/"),
        ("post", REPORTS + "{id}/regenerate/"),
        ("get", REPORTS + "recent/"),
        ("get", REPORTS + "types/"),
        ("get", REPORTS + "schedules/"),
        ("post", REPORTS + "schedules/"),
        ("get", REPORTS + "schedules/{id}/"),
        ("put", REPORTS + "schedules/{id}/"),
        ("patch", REPORTS + "schedules/{id}/"),
        ("delete", REPORTS + "schedules/{id}/"),
        ("get", REPORTS + "schedules/{id}/executions/"),
        ("post", REPORTS + "schedules/{id}/run-now/"),
        ("post", REPORTS + "schedules/{id}/toggle/"),
    }
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


def test_every_endpoint_documents_its_errors(document):
    for path, method, operation in operations(document):
        codes = set(operation["responses"])
        assert {"401", "403", "429"} <= codes, (method, path)
        assert operation["responses"]["429"]["headers"]["Retry-After"]["schema"] == {
            "type": "integer"
        }
        if "{id}" in path:
            assert "404" in codes, (method, path)
        for code, response in operation["responses"].items():
            if code >= "400":
                assert response["description"], (method, path, code)
    responses = {(method, path): set(op["responses"]) for path, method, op in operations(document)}
    assert {"200", "201", "400", "422"} <= responses["post", REPORTS]
    assert "409" in responses["post", REPORTS + "{id}/cancel/"]
    assert "410" in responses["get", REPORTS + "{id}/download/"]
    assert "400" in responses["post", REPORTS + "{id}/regenerate/"]
    assert "400" in responses["patch", REPORTS + "schedules/{id}/"]
    assert "204" in responses["delete", REPORTS + "schedules/{id}/"]


def test_the_create_request_is_one_schema_per_registered_type(document):
    body = document["paths"][REPORTS]["post"]["requestBody"]["content"]["application/json"]
    create = resolve(body["schema"], document)
    raw = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    types = [g.report_type for g in registry]
    assert len(raw["oneOf"]) == len(types) == len(create["oneOf"])
    assert raw["discriminator"]["propertyName"] == "report_type"
    assert raw["discriminator"]["mapping"] == {
        t: f"#/components/schemas/{report_request_component_name(t)}" for t in types
    }
    for report_type, subschema in zip(types, create["oneOf"], strict=True):
        assert subschema["properties"]["report_type"]["enum"] == [report_type]
        assert "report_type" in subschema["required"]
        assert {"title", "priority", "format", "webhook_url", "force"} <= set(
            subschema["properties"]
        )
    sales = resolve(document["components"]["schemas"]["ReportRequest_sales"], document)
    assert sales["properties"]["parameters"] == {
        "type": "object",
        "properties": {
            "start_date": {"type": "string", "format": "date"},
            "end_date": {"type": "string", "format": "date"},
        },
        "required": ["end_date", "start_date"],
    }


def test_types_returns_the_documents_parameters_schema(auth_client, document):
    response = auth_client.get(REPORTS + "types/")
    assert response.status_code == 200
    listed = {item["report_type"]: item for item in response.json()}
    assert listed, "the test app registers report types"
    schemas = document["components"]["schemas"]
    for report_type, item in listed.items():
        component = resolve(schemas[report_request_component_name(report_type)], document)
        assert item["parameters_schema"] == component["properties"]["parameters"], report_type
        # The older description stays beside it.
        assert isinstance(item["parameters"], dict)
    assert listed["numbers"]["parameters_schema"]["properties"]["count"] == {
        "type": "integer",
        "maximum": 5_000_000,
        "minimum": 0,
        "default": 10,
    }
    assert listed["numbers"]["parameters"]["count"]["type"] == "integer"


def test_a_generator_without_parameters_class_takes_any_object():
    assert BrokenReport.parameters_class is None
    assert parameters_schema(BrokenReport) == FREE_FORM_PARAMETERS
    assert parameters_schema(BrokenReport) is not FREE_FORM_PARAMETERS
    assert parameters_schema(SalesReport)["required"] == ["end_date", "start_date"]


def test_the_api_runs_without_drf_spectacular():
    code = """
import sys
sys.modules["drf_spectacular"] = None
import django
django.setup()
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIRequestFactory, force_authenticate
from django_async_reports.api.reports import ReportViewSet
from django_async_reports.api.parameters_schema import spectacular_available
call_command("check")
request = APIRequestFactory().get("/api/v1/reports/types/")
force_authenticate(request, user=User(username="u", is_staff=True))
response = ReportViewSet.as_view({"get": "types"})(request)
sales = next(t for t in response.data if t["report_type"] == "sales")
print(response.status_code, spectacular_available(), sales["parameters_schema"])
print(sorted(sales["parameters"]))
print("django_async_reports.api.openapi" in sys.modules)
"""
    assert fresh_python_output(code) == [
        "System check identified no issues (0 silenced).",
        "200 False None",
        "['end_date', 'start_date']",
        "False",
    ]


# -- found by the fuzzer ---------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "status_code"),
    [
        # ISO 8601 allows it; PostgreSQL refuses offsets past ±15:59 (was a 500).
        ("3608-01-27T18:15:22.52-16:49", 200),
        ("2026-01-01T00:00:00+23:59", 200),
        # Out of the representable years once in UTC (was a 500 too).
        ("0001-01-01T00:00:00+01:00", 400),
        ("9999-12-31T23:59:59-01:00", 400),
    ],
)
def test_list_filters_take_any_utc_offset(auth_client, value, status_code):
    for name in ("created_after", "created_before"):
        response = auth_client.get(REPORTS, {name: value})
        assert response.status_code == status_code, (name, value, response.content)
        if status_code == 400:
            assert name in response.json()
