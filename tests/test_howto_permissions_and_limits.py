"""docs/how-to/permissions-and-limits.md: who may run what, and the limits, through the API.

The generators, the permission class and the settings block are the page's
(``docs_src/how_to/permissions_and_limits/``); the answers asserted here are
the ones the page shows.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from django_async_reports.conf import DEFAULTS
from django_async_reports.models import Report
from django_async_reports.tasks import generate_report
from docs_src.how_to.permissions_and_limits import settings as guide_settings
from tests.factories import ReportFactory, SaleFactory, UserFactory
from tests.helpers import csv_rows, run_report, set_reports
from tests.howto_modules import guide_module

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
PERMISSION = "docs_src.how_to.permissions_and_limits.permissions.InReportingGroup"


@pytest.fixture
def guide():
    with guide_module("docs_src.how_to.permissions_and_limits.reports") as module:
        yield module


@pytest.fixture
def guide_limits(settings):
    """The page's settings block, its permission class found where this test keeps it."""
    values = dict(guide_settings.ASYNC_REPORTS)
    assert values["PERMISSION_CLASSES"] == ["myapp.permissions.InReportingGroup"]
    values["PERMISSION_CLASSES"] = [PERMISSION]
    set_reports(settings, **values)


def client_for(user):
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def reporter(username="rita", *perms):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get_or_create(name="Reporting")[0])
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def create(client, **body):
    return client.post(URL, {"report_type": "sales_export", **body}, format="json")


def test_every_key_of_the_settings_block_is_a_setting():
    assert set(guide_settings.ASYNC_REPORTS) <= set(DEFAULTS)


class TestWhoMayRunWhat:
    def test_types_lists_revenue_only_for_users_with_the_permission(self, guide, user):
        allowed = UserFactory(username="vera")
        allowed.user_permissions.add(Permission.objects.get(codename="view_sale"))
        listed = {t["report_type"] for t in client_for(user).get(URL + "types/").json()}
        assert "revenue" not in listed and "sales_export" in listed
        listed = {t["report_type"] for t in client_for(allowed).get(URL + "types/").json()}
        assert "revenue" in listed

    def test_asking_for_it_without_the_permission_reads_as_an_unknown_type(
        self, guide, auth_client, user
    ):
        response = auth_client.post(URL, {"report_type": "revenue"}, format="json")
        assert response.status_code == 400
        [message] = response.json()["report_type"]
        assert message.startswith('"revenue" is not a known report type. Known types: ')
        assert "revenue," not in message and not message.endswith("revenue.")
        assert not Report.objects.filter(user=user).exists()

    def test_with_the_permission_it_runs(self, guide, captured_dispatches):
        vera = UserFactory(username="vera")
        vera.user_permissions.add(Permission.objects.get(codename="view_sale"))
        SaleFactory(sold_on=datetime.date(2025, 1, 2), amount="10.00")
        SaleFactory(sold_on=datetime.date(2025, 1, 2), amount="5.50")
        response = client_for(vera).post(URL, {"report_type": "revenue"}, format="json")
        assert response.status_code == 201, response.json()
        report = run_report(Report.objects.get(pk=response.json()["id"]))
        with report.result_file.open("rb") as fh:
            assert csv_rows(fh.read()) == [["day", "revenue"], ["2025-01-02", "15.50"]]

    def test_a_regenerate_after_the_permission_is_gone_is_a_403(self, guide, auth_client, user):
        report = ReportFactory(user=user, report_type="revenue", status="completed")
        response = auth_client.post(f"{URL}{report.pk}/regenerate/")
        assert response.status_code == 403
        assert response.json() == {"detail": 'You may not run reports of type "revenue".'}


class TestTheApiPermissionClass:
    def test_a_user_outside_the_group_gets_a_403(self, guide, guide_limits, auth_client):
        response = create(auth_client, parameters={"year": 2025})
        assert response.status_code == 403
        assert response.json() == {"detail": "Only members of the Reporting group may use reports."}
        assert auth_client.get(URL).status_code == 403

    def test_anonymous_requests_get_a_401(self, guide, guide_limits):
        assert APIClient().get(URL).status_code == 401

    def test_a_member_may_use_it(self, guide, guide_limits, captured_dispatches):
        client = client_for(reporter())
        assert create(client, parameters={"year": 2025}).status_code == 201
        assert client.get(URL).status_code == 200


class TestLimits:
    def test_the_sixth_active_report_is_a_429_with_retry_after(
        self, guide, guide_limits, captured_dispatches
    ):
        client = client_for(reporter())
        for year in range(2020, 2025):
            assert create(client, parameters={"year": year}).status_code == 201
        response = create(client, parameters={"year": 2025})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "60"
        assert response.json() == {
            "detail": "You have 5 reports pending or processing, the most allowed at once. "
            "Wait for one to finish, or cancel one. Expected available in 60 seconds."
        }
        # A place frees when a report ends (here: cancelled).
        first = Report.objects.filter(user__username="rita").earliest("created_at")
        assert client.post(f"{URL}{first.pk}/cancel/").status_code == 200
        assert create(client, parameters={"year": 2025}).status_code == 201

    def test_the_21st_create_in_a_minute_is_throttled(
        self, guide, guide_limits, settings, captured_dispatches
    ):
        set_reports(settings, MAX_ACTIVE_REPORTS_PER_USER=None)
        client = client_for(reporter())
        answers = [create(client, parameters={"year": 2000 + i}).status_code for i in range(20)]
        assert answers == [201] * 20
        response = create(client, parameters={"year": 2099})
        assert response.status_code == 429
        wait = int(response.headers["Retry-After"])
        assert 0 < wait <= 60
        assert response.json() == {
            "detail": f"Request was throttled. Expected available in {wait} seconds."
        }

    def test_urgent_needs_the_permission(self, guide, guide_limits, captured_dispatches):
        response = create(client_for(reporter()), parameters={"year": 2025}, priority="urgent")
        assert response.status_code == 400
        assert response.json() == {
            "priority": ['You may not ask for "urgent" priority. Allowed: high, normal, low.']
        }
        boss = reporter("boss", "request_urgent_report")
        response = create(client_for(boss), parameters={"year": 2025}, priority="urgent")
        assert response.status_code == 201, response.json()


class TestARowCap:
    def test_too_many_rows_fail_the_report_with_the_generators_sentence(
        self, guide, user, monkeypatch
    ):
        monkeypatch.setattr(guide, "MAX_ROWS", 2)
        for day in (1, 2, 3):
            SaleFactory(owner=user, sold_on=datetime.date(2025, 1, day))
        report = ReportFactory(user=user, report_type="sales_export", parameters={"year": 2025})
        generate_report.apply(args=[str(report.pk)])
        report.refresh_from_db()
        assert report.status == Report.Status.FAILED
        assert report.retry_count == 0
        assert report.error_message == (
            "2025 has 3 sales; a report may hold at most 2. Ask for a smaller export."
        )

    def test_under_the_cap_it_completes(self, guide, user):
        SaleFactory(owner=user, sold_on=datetime.date(2025, 1, 1))
        report = ReportFactory(user=user, report_type="sales_export", parameters={"year": 2025})
        generate_report.apply(args=[str(report.pk)])
        report.refresh_from_db()
        assert report.status == Report.Status.COMPLETED, report.error_message
        assert report.result_data["row_count"] == 1

    def test_the_type_has_its_own_soft_time_limit(self, guide):
        assert guide.SalesExportReport.soft_time_limit == 900
