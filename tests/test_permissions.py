"""Who may run what: a generator's ``has_permission`` and the priority permission.

Every entry point honours them: the API's create, ``types/`` and regenerate,
the schedules (create, update, run-now and each scheduled run), and the
admin's retry and regenerate, which act for the report's owner.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser, Permission

from django_async_reports import schedules, services
from django_async_reports.exceptions import PriorityNotAllowed, ReportTypeNotAllowed
from django_async_reports.models import Report, ScheduleExecution
from django_async_reports.services import permissions
from tests.factories import ReportFactory, UserFactory
from tests.helpers import make_schedule, messages_of, run_action

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
SCHEDULES = URL + "schedules/"
CHANGELIST = "/admin/django_async_reports/report/"
NOT_URGENT = ["low", "normal", "high"]


def grant_any_priority(user):
    user.user_permissions.add(Permission.objects.get(codename="request_urgent_report"))
    # A fresh instance: Django caches a user's permissions on the object.
    return type(user).objects.get(pk=user.pk)


class TestReportTypes:
    def test_every_authenticated_user_may_run_a_type_by_default(self, user):
        assert permissions.may_run(user, "numbers")
        assert not permissions.may_run(AnonymousUser(), "numbers")
        assert not permissions.may_run(user, "no-such-type")

    def test_types_lists_only_what_the_user_may_run(self, auth_client, user):
        listed = {t["report_type"] for t in auth_client.get(URL + "types/").json()}
        assert "numbers" in listed and "staff_only" not in listed
        user.is_staff = True
        user.save()
        listed = {t["report_type"] for t in auth_client.get(URL + "types/").json()}
        assert "staff_only" in listed

    def test_create_refuses_a_type_the_user_may_not_run_as_unknown(
        self, auth_client, captured_dispatches
    ):
        response = auth_client.post(URL, {"report_type": "staff_only"}, format="json")

        assert response.status_code == 400
        [message] = response.json()["report_type"]
        assert message.startswith('"staff_only" is not a known report type. Known types: ')
        assert "staff_only" not in message.partition("Known types: ")[2]  # not listed either
        assert not Report.objects.exists() and not captured_dispatches

    def test_staff_may_create_it(self, auth_client, user, captured_dispatches):
        user.is_staff = True
        user.save()
        response = auth_client.post(URL, {"report_type": "staff_only"}, format="json")
        assert response.status_code == 201, response.json()
        assert Report.objects.get().report_type == "staff_only"

    def test_regenerate_after_the_permission_is_gone_is_a_403(self, auth_client, user):
        report = ReportFactory(user=user, report_type="staff_only", status="completed")
        response = auth_client.post(f"{URL}{report.pk}/regenerate/")
        assert response.status_code == 403
        assert response.json()["detail"] == 'You may not run reports of type "staff_only".'
        assert Report.objects.count() == 1

    def test_the_service_layer_refuses_it_too(self, user):
        with pytest.raises(ReportTypeNotAllowed):
            services.request_report(user=user, report_type="staff_only")
        failed = ReportFactory(user=user, report_type="staff_only", status="failed")
        with pytest.raises(ReportTypeNotAllowed):
            services.retry_report(failed)
        assert Report.objects.get(pk=failed.pk).status == "failed"


class TestPriorities:
    def test_all_priorities_by_default(self, auth_client, captured_dispatches):
        response = auth_client.post(
            URL, {"report_type": "numbers", "priority": "urgent"}, format="json"
        )
        assert response.status_code == 201
        assert response.json()["priority"] == "urgent"

    def test_urgent_needs_the_permission_when_the_setting_leaves_it_out(
        self, auth_client, user, settings, captured_dispatches
    ):
        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "PRIORITIES_WITHOUT_PERMISSION": NOT_URGENT,
        }
        response = auth_client.post(
            URL, {"report_type": "numbers", "priority": "urgent"}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {
            "priority": ['You may not ask for "urgent" priority. Allowed: high, normal, low.']
        }
        assert not captured_dispatches

        user = grant_any_priority(user)
        assert permissions.allowed_priorities(user) == ["urgent", "high", "normal", "low"]
        response = auth_client.post(
            URL, {"report_type": "numbers", "priority": "urgent"}, format="json"
        )
        assert response.status_code == 201

    def test_setting_reverts(self, user, settings):
        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "PRIORITIES_WITHOUT_PERMISSION": ["low"],
        }
        assert permissions.allowed_priorities(user) == ["low"]
        with pytest.raises(PriorityNotAllowed):
            services.request_report(user=user, report_type="numbers", priority="normal")
        settings.ASYNC_REPORTS = {
            k: v for k, v in settings.ASYNC_REPORTS.items() if k != "PRIORITIES_WITHOUT_PERMISSION"
        }
        assert permissions.allowed_priorities(user) == ["urgent", "high", "normal", "low"]

    def test_joining_a_report_cannot_raise_it_to_a_refused_priority(
        self, auth_client, user, settings, captured_dispatches
    ):
        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "PRIORITIES_WITHOUT_PERMISSION": NOT_URGENT,
        }
        body = {"report_type": "numbers", "parameters": {"count": 3}}
        first = auth_client.post(URL, body, format="json").json()
        response = auth_client.post(URL, {**body, "priority": "urgent"}, format="json")
        assert response.status_code == 400
        assert Report.objects.get(pk=first["id"]).priority == "normal"


class TestSchedules:
    def test_a_schedule_of_a_type_the_owner_may_not_run_is_refused(self, auth_client):
        payload = {"report_type": "staff_only", "frequency": "daily"}
        response = auth_client.post(SCHEDULES, payload, format="json")
        assert response.status_code == 400
        assert response.json()["report_type"][0].startswith('"staff_only" is not a known')

    def test_an_urgent_schedule_needs_the_permission(self, auth_client, user, settings):
        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "PRIORITIES_WITHOUT_PERMISSION": NOT_URGENT,
        }
        payload = {"report_type": "numbers", "frequency": "daily", "priority": "urgent"}
        response = auth_client.post(SCHEDULES, payload, format="json")
        assert response.status_code == 400
        assert "priority" in response.json()

    def test_a_kept_schedule_stays_editable_but_run_now_and_its_runs_are_refused(
        self, auth_client, user, captured_dispatches
    ):
        user.is_staff = True
        user.save()
        schedule = make_schedule(user, report_type="staff_only", parameters={})
        user.is_staff = False
        user.save()

        # Editing another field: the type kept as it is is not asked again.
        response = auth_client.patch(
            f"{SCHEDULES}{schedule.pk}/", {"title": "Renamed"}, format="json"
        )
        assert response.status_code == 200, response.json()
        # Run now: a 403, and no execution recorded.
        response = auth_client.post(f"{SCHEDULES}{schedule.pk}/run-now/")
        assert response.status_code == 403
        assert not ScheduleExecution.objects.exists()
        # Its scheduled run: a failed execution saying why, no report.
        due = schedule.next_run_at
        [execution] = schedules.tick(now=due + datetime.timedelta(seconds=1))
        assert execution.status == "failed"
        assert "staff_only" in execution.error
        assert not Report.objects.exists() and not captured_dispatches


class TestAdmin:
    def test_retry_and_regenerate_honour_the_owners_permissions(
        self, admin_client, user, captured_dispatches
    ):
        failed = ReportFactory(user=user, report_type="staff_only", status="failed", title="Secret")

        response = run_action(admin_client, CHANGELIST, "retry_reports", failed)
        assert response.status_code == 200
        assert (
            "warning",
            'Secret was not retried: You may not run reports of type "staff_only".',
        ) in messages_of(response)
        assert Report.objects.get(pk=failed.pk).status == "failed"

        response = run_action(admin_client, CHANGELIST, "regenerate_reports", failed)
        assert response.status_code == 200
        assert any("was not regenerated" in m for _level, m in messages_of(response))
        assert Report.objects.count() == 1 and not captured_dispatches

    def test_staff_owners_reports_are_retried(self, admin_client, captured_dispatches):
        staff = UserFactory(is_staff=True)
        failed = ReportFactory(user=staff, report_type="staff_only", status="failed")
        run_action(admin_client, CHANGELIST, "retry_reports", failed)
        assert Report.objects.get(pk=failed.pk).status == "pending"
