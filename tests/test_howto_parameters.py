"""docs/how-to/parameters.md: its generator, requests and answers, run for real.

The page includes ``docs_src/how_to/parameters/`` (code and JSON): what it shows
is what these tests send and receive, through the API on PostgreSQL.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from django_async_reports import schedules
from django_async_reports.api.openapi import report_request_component_name
from django_async_reports.models import Report, ReportSchedule
from django_async_reports.tasks import generate_report
from tests.factories import ReportFactory, SaleFactory
from tests.helpers import csv_rows, run_report
from tests.howto_modules import guide_module

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
GUIDE = Path(__file__).resolve().parent.parent / "docs_src" / "how_to" / "parameters"


def shown(name: str):
    """A JSON file the page shows."""
    return json.loads((GUIDE / name).read_text())


@pytest.fixture
def guide():
    with guide_module("docs_src.how_to.parameters.reports") as module:
        yield module


def post(client, body):
    return client.post(URL, body, format="json")


def test_field_errors_come_back_as_a_400_nested_under_parameters(guide, auth_client, user):
    response = post(auth_client, shown("bad_request.json"))
    assert response.status_code == 400
    # validate() (the cross-field rules) only runs once every field is valid:
    # end_date before start_date is not reported yet.
    assert response.json() == shown("bad_response.json")
    assert not Report.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("parameters", "errors"),
    [
        (
            {"start_date": "2025-03-01", "end_date": "2025-02-01"},
            {"end_date": ["Must not be before start_date."]},
        ),
        (
            {"start_date": "2024-01-01", "end_date": "2025-01-01"},
            {"end_date": ["The period may cover at most 366 days."]},
        ),
        (
            {"start_date": "2025-13-01"},
            {
                "start_date": [
                    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
                ],
                "end_date": ["This field is required."],
            },
        ),
        (
            {"start_date": "2025-01-01", "end_date": "2025-01-31", "min_amount": "-1"},
            {"min_amount": ["Ensure this value is greater than or equal to 0."]},
        ),
    ],
)
def test_cross_field_and_bounded_rules(guide, auth_client, parameters, errors):
    body = {"report_type": "sales_by_period", "parameters": parameters}
    response = post(auth_client, body)
    assert response.status_code == 400
    assert response.json() == {"parameters": errors}


def test_a_366_day_period_is_allowed(guide, auth_client, captured_dispatches):
    body = {
        "report_type": "sales_by_period",
        "parameters": {"start_date": "2024-01-01", "end_date": "2024-12-31"},
    }
    assert post(auth_client, body).status_code == 201


def test_the_report_stores_the_json_form_with_defaults_and_rows_get_typed_values(
    guide, auth_client, user, other_user, captured_dispatches
):
    response = post(auth_client, shown("good_request.json"))
    assert response.status_code == 201, response.json()
    stored = {
        "start_date": "2025-01-01",
        "end_date": "2025-03-31",
        "order_by": "sold_on",
        "min_amount": "0.00",
    }
    assert response.json()["parameters"] == stored
    report = Report.objects.get(pk=response.json()["id"])
    assert report.parameters == stored

    generator = guide.SalesByPeriodReport(report=report)
    params = generator.get_params(report.parameters)
    assert params == {
        "start_date": datetime.date(2025, 1, 1),
        "end_date": datetime.date(2025, 3, 31),
        "order_by": "sold_on",
        "min_amount": Decimal("0.00"),
    }

    late = SaleFactory(owner=user, customer="Late", sold_on=datetime.date(2025, 3, 31))
    early = SaleFactory(owner=user, customer="Early", sold_on=datetime.date(2025, 1, 1))
    SaleFactory(owner=user, customer="Outside", sold_on=datetime.date(2025, 4, 1))
    SaleFactory(owner=other_user, customer="Bob's", sold_on=datetime.date(2025, 2, 1))
    report = run_report(report)
    assert report.status == Report.Status.COMPLETED
    with report.result_file.open("rb") as fh:
        assert csv_rows(fh.read()) == [
            ["sale_id", "date", "customer", "amount"],
            [str(early.pk), "2025-01-01", "Early", "10.50"],
            [str(late.pk), "2025-03-31", "Late", "10.50"],
        ]


def test_choices_and_bounds_reach_rows(guide, auth_client, user, captured_dispatches):
    body = {
        "report_type": "sales_by_period",
        "parameters": {
            "start_date": "2025-01-01",
            "end_date": "2025-01-31",
            "order_by": "-amount",
            "min_amount": "20",
        },
    }
    SaleFactory(owner=user, customer="Small", amount=Decimal("5"), sold_on="2025-01-02")
    SaleFactory(owner=user, customer="Mid", amount=Decimal("20"), sold_on="2025-01-03")
    SaleFactory(owner=user, customer="Big", amount=Decimal("99"), sold_on="2025-01-04")
    response = post(auth_client, body)
    assert response.json()["parameters"]["min_amount"] == "20.00"
    report = run_report(Report.objects.get(pk=response.json()["id"]))
    with report.result_file.open("rb") as fh:
        assert [row[2] for row in csv_rows(fh.read())[1:]] == ["Big", "Mid"]


def test_parameters_that_no_longer_validate_fail_the_run_at_once(guide, user):
    # Stored without the API (or valid when requested): the worker validates again.
    report = ReportFactory(
        user=user,
        report_type="sales_by_period",
        parameters={"start_date": "2999-01-01", "end_date": "2999-01-31"},
    )
    generate_report.apply(args=[str(report.pk)])
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    assert report.retry_count == 0
    assert (
        report.error_message == 'Invalid parameters: {"start_date": ["Must not be in the future."]}'
    )


def test_types_and_openapi_describe_the_parameters(guide, auth_client):
    listed = {t["report_type"]: t for t in auth_client.get(URL + "types/").json()}
    described = listed["sales_by_period"]
    assert described["parameters"] == {
        "start_date": {
            "type": "date",
            "required": True,
            "help_text": "First day of the period, included.",
        },
        "end_date": {
            "type": "date",
            "required": True,
            "help_text": "Last day of the period, included.",
        },
        "order_by": {
            "type": "choice",
            "required": False,
            "help_text": "Order of the rows.",
            "choices": ["sold_on", "-amount"],
            "default": "sold_on",
        },
        "min_amount": {"type": "decimal", "required": False, "default": "0.00"},
    }
    schema = described["parameters_schema"]
    assert schema["required"] == ["end_date", "start_date"]
    assert schema["properties"]["order_by"]["enum"] == ["sold_on", "-amount"]
    assert schema["properties"]["start_date"] == {
        "type": "string",
        "format": "date",
        "description": "First day of the period, included.",
    }

    document = json.loads(
        json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str)
    )
    component = document["components"]["schemas"][report_request_component_name("sales_by_period")]
    parameters = component["properties"]["parameters"]
    assert parameters["required"] == ["end_date", "start_date"]
    assert set(parameters["properties"]) == {"start_date", "end_date", "order_by", "min_amount"}


def test_a_schedule_fills_the_dates_with_template_variables(guide, auth_client, user):
    response = auth_client.post(URL + "schedules/", shown("schedule_request.json"), format="json")
    assert response.status_code == 201, response.json()
    schedule = ReportSchedule.objects.get(pk=response.json()["id"])
    # Stored unrendered; each run renders and validates them again.
    assert schedule.parameters["start_date"] == "{{last_month_start}}"
    now = datetime.datetime(2025, 3, 7, 7, 0, tzinfo=datetime.timezone.utc)
    execution = schedules.run_now(schedule, now=now)
    assert execution.report is not None, execution.error
    assert execution.report.parameters == {
        "start_date": "2025-02-01",
        "end_date": "2025-02-28",
        "order_by": "sold_on",
        "min_amount": "0.00",
    }


def test_a_schedule_whose_sample_parameters_fail_is_refused(guide, auth_client):
    body = {**shown("schedule_request.json"), "parameters": {"start_date": "{{today}}"}}
    response = auth_client.post(URL + "schedules/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"parameters": {"end_date": ["This field is required."]}}
