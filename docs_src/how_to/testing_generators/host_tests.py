"""A host project's tests of its ``signups`` generator, as docs/how-to/testing-generators.md
shows them. tests/test_testing_helper.py runs this file with pytest in a subprocess, as a
host's test run would (its conftest being host_conftest.py)."""

# --8<-- [start:imports]
import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import TestCase
from django.urls import reverse
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from django_async_reports.models import Report
from django_async_reports.tasks import generate_report
from django_async_reports.testing import read_rows, run_report

DECEMBER = {"start_date": "2024-12-01", "end_date": "2024-12-31"}


def joined(username, day):
    """A user who signed up at noon (UTC) on ``day``."""
    when = datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.timezone.utc)
    return get_user_model().objects.create_user(
        username, email=f"{username}@example.com", date_joined=when
    )


# --8<-- [end:imports]


# --8<-- [start:fixture]
def test_signups_of_december(run_report):  # the fixture: the db fixture comes with it
    alice = joined("alice", datetime.date(2024, 12, 3))
    joined("bob", datetime.date(2024, 11, 30))  # outside the period

    report = run_report("signups", user=alice, parameters=DECEMBER)

    assert report.status == "completed", report.error_detail
    assert read_rows(report) == [
        {"username": "alice", "email": "alice@example.com", "joined": "2024-12-03"}
    ]


def test_signups_as_json(run_report):
    alice = joined("alice", datetime.date(2024, 12, 3))

    report = run_report("signups", user=alice, parameters=DECEMBER, format="json")

    assert [row["joined"] for row in read_rows(report)] == ["2024-12-03"]
    # --8<-- [end:fixture]


# --8<-- [start:validation]
def test_the_period_must_be_in_order(run_report):
    alice = joined("alice", datetime.date(2024, 12, 3))

    with pytest.raises(ValidationError) as raised:
        run_report(
            "signups",
            user=alice,
            parameters={"start_date": "2024-12-31", "end_date": "2024-12-01"},
        )

    assert raised.value.detail == {"end_date": ["Must not be before start_date."]}
    # --8<-- [end:validation]


# --8<-- [start:testcase]
class SignupsReportTests(TestCase):
    def test_signups_of_december(self):
        alice = joined("alice", datetime.date(2024, 12, 3))

        report = run_report("signups", user=alice, parameters=DECEMBER, format="xlsx")

        self.assertEqual(report.status, "completed")
        [row] = read_rows(report)  # XLSX: openpyxl must be installed
        self.assertEqual(row["joined"].date(), datetime.date(2024, 12, 3))
        # --8<-- [end:testcase]


# --8<-- [start:apply]
@pytest.mark.django_db
def test_a_report_row_run_by_the_task():
    alice = joined("alice", datetime.date(2024, 12, 3))
    report = Report.objects.create(user=alice, report_type="signups", parameters=DECEMBER)

    generate_report.apply(args=[report.id])

    report.refresh_from_db()
    assert (report.status, report.progress) == ("completed", 100)
    assert report.result_data["row_count"] == 1
    # --8<-- [end:apply]


# --8<-- [start:api]
@pytest.mark.django_db
def test_the_api_answers_400_to_a_period_out_of_order():
    client = APIClient()
    client.force_authenticate(joined("alice", datetime.date(2024, 12, 3)))

    response = client.post(
        reverse("django_async_reports:report-list"),
        {
            "report_type": "signups",
            "parameters": {"start_date": "2024-12-31", "end_date": "2024-12-01"},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"parameters": {"end_date": ["Must not be before start_date."]}}
    assert not Report.objects.exists()
    # --8<-- [end:api]
