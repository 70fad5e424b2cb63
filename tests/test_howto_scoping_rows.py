"""docs/how-to/scoping-rows.md: each user's report holds their rows, and only theirs.

The generators are the page's (``docs_src/how_to/scoping_rows/reports.py``),
requested through the API and run on PostgreSQL as the worker runs them.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Group

from django_async_reports import schedules
from django_async_reports.models import Report
from tests.factories import SaleFactory, UserFactory
from tests.helpers import csv_rows, make_schedule, run_report
from tests.howto_modules import guide_module

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"


@pytest.fixture(autouse=True)
def guide():
    with guide_module("docs_src.how_to.scoping_rows.reports") as module:
        yield module


def request_and_run(client, report_type, **body):
    response = client.post(URL, {"report_type": report_type, **body}, format="json")
    assert response.status_code == 201, response.json()
    report = run_report(Report.objects.get(pk=response.json()["id"]))
    assert report.status == Report.Status.COMPLETED, report.error_message
    with report.result_file.open("rb") as fh:
        return csv_rows(fh.read())


def customers(rows, column=2):
    return sorted(row[column] for row in rows[1:])


def test_each_user_gets_only_their_own_rows(
    auth_client, other_client, user, other_user, captured_dispatches
):
    for name in ("a1", "a2"):
        SaleFactory(owner=user, customer=name)
    SaleFactory(owner=other_user, customer="b1")

    assert customers(request_and_run(auth_client, "my_sales")) == ["a1", "a2"]
    assert customers(request_and_run(other_client, "my_sales")) == ["b1"]


def test_a_user_id_in_the_parameters_changes_nothing(
    auth_client, user, other_user, captured_dispatches
):
    SaleFactory(owner=user, customer="mine")
    SaleFactory(owner=other_user, customer="theirs")
    rows = request_and_run(
        auth_client, "my_sales", parameters={"user_id": other_user.pk, "owner": other_user.pk}
    )
    assert customers(rows) == ["mine"]


def test_rows_stop_at_the_day_the_report_was_requested(auth_client, user, captured_dispatches):
    today = datetime.date.today()
    SaleFactory(owner=user, customer="today", sold_on=today)
    SaleFactory(owner=user, customer="tomorrow", sold_on=today + datetime.timedelta(days=2))
    assert customers(request_and_run(auth_client, "my_sales")) == ["today"]


def test_teams_see_each_others_rows_and_nobody_elses(captured_dispatches, client_for):
    north, south = Group.objects.create(name="North"), Group.objects.create(name="South")
    ann, ben, cat, dan = (UserFactory(username=n) for n in ("ann", "ben", "cat", "dan"))
    ann.groups.add(north)
    ben.groups.add(north)
    cat.groups.add(south)  # dan is in no group
    for seller in (ann, ben, cat, dan):
        SaleFactory(owner=seller, customer=f"{seller.username}'s customer")

    ann_rows = request_and_run(client_for(ann), "team_sales")
    assert customers(ann_rows) == ["ann's customer", "ben's customer"]
    assert sorted(row[1] for row in ann_rows[1:]) == ["ann", "ben"]
    assert customers(request_and_run(client_for(cat), "team_sales")) == ["cat's customer"]
    assert customers(request_and_run(client_for(dan), "team_sales")) == ["dan's customer"]


def test_staff_are_scoped_like_anyone_and_superusers_see_every_row(captured_dispatches, client_for):
    staff = UserFactory(username="staff", is_staff=True)
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    for seller in (UserFactory(username="eve"), UserFactory(username="fay"), staff):
        SaleFactory(owner=seller, customer=seller.username)

    assert customers(request_and_run(client_for(staff), "team_sales")) == ["staff"]
    everyone = customers(request_and_run(client_for(boss), "team_sales"))
    assert everyone == ["eve", "fay", "staff"]


def test_a_scheduled_run_is_generated_as_the_schedules_owner(user, other_user):
    SaleFactory(owner=user, customer="alice's")
    SaleFactory(owner=other_user, customer="bob's")
    schedule = make_schedule(user, report_type="my_sales", title="Mine", parameters={})
    execution = schedules.run_now(schedule)
    report = execution.report
    assert report is not None, execution.error
    assert report.user == user
    report = run_report(report)
    with report.result_file.open("rb") as fh:
        assert customers(csv_rows(fh.read())) == ["alice's"]


@pytest.fixture
def client_for():
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user):
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
        return client

    return make
