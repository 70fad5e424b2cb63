"""Who report e-mails may go to: EMAIL_ALLOWED_DOMAINS and EMAIL_RECIPIENT_POLICY.

Checked when a schedule (API, admin) or a report asking for its e-mail is
saved, and again at every send.
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from django_async_reports import schedules
from django_async_reports.conf import DEFAULTS, report_settings
from django_async_reports.delivery import email, policy
from django_async_reports.models import ReportSchedule, ScheduleExecution
from django_async_reports.schedules.validation import validate_schedule
from tests.factories import ReportFactory, UserFactory
from tests.helpers import (
    make_email_schedule,
    make_report_execution,
    make_schedule,
    run_report,
    scheduled_report,
    set_reports,
)

pytestmark = pytest.mark.django_db

SCHEDULES_URL = "/api/v1/reports/schedules/"
REPORTS_URL = "/api/v1/reports/"
NUMBERS = {"report_type": "numbers", "frequency": "daily", "parameters": {"count": 2}}
Delivery = ScheduleExecution.Delivery

#: The callables EMAIL_RECIPIENT_POLICY names in these tests.
BLOCKED = {"ceo@example.com"}


def refuse_blocked(address, user):
    return address.lower() not in BLOCKED


def broken_policy(address, user):
    raise RuntimeError("the directory is down")


def only_own_address(address, user):
    return address == user.email


# -- the rule ------------------------------------------------------------------------------
class TestDomains:
    def test_default_allows_any_domain(self):
        assert DEFAULTS["EMAIL_ALLOWED_DOMAINS"] is None
        assert DEFAULTS["EMAIL_RECIPIENT_POLICY"] is None
        assert policy.is_allowed_recipient("someone@gmail.com", None)

    @pytest.mark.parametrize(
        ("address", "allowed"),
        [
            ("a@example.com", True),
            ("a@EXAMPLE.com", True),
            ("a@sub.example.com", False),  # "example.com" is that domain only
            ("a@corp.example.org", True),  # ".example.org": subdomains...
            ("a@deep.corp.example.org", True),
            ("a@example.org", True),  # ...and the domain itself, as ALLOWED_HOSTS
            ("a@badexample.org", False),  # not a subdomain: a longer name
            ("a@example.com.evil.net", False),
            ("a@gmail.com", False),
            ('"x@example.com"@evil.net', False),  # the domain is after the last @
        ],
    )
    def test_exact_domains_and_dotted_subdomains(self, settings, address, allowed):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["example.com", ".example.org"])
        assert policy.is_allowed_recipient(address, None) is allowed

    def test_international_domains_match_in_either_form(self, settings):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["bücher.example"])
        assert policy.is_allowed_recipient("a@xn--bcher-kva.example", None)
        assert policy.is_allowed_recipient("a@BÜCHER.example", None)

    def test_an_empty_list_refuses_everyone(self, settings):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=[])
        assert not policy.is_allowed_recipient("a@example.com", None)

    def test_revert(self, settings):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["example.com"])
        assert report_settings.EMAIL_ALLOWED_DOMAINS == ["example.com"]
        settings.ASYNC_REPORTS = {
            k: v for k, v in settings.ASYNC_REPORTS.items() if k != "EMAIL_ALLOWED_DOMAINS"
        }
        assert report_settings.EMAIL_ALLOWED_DOMAINS is None


class TestPolicyHook:
    def test_the_hook_decides_each_address_for_the_user(self, settings):
        set_reports(settings, EMAIL_RECIPIENT_POLICY=f"{__name__}.only_own_address")
        user = UserFactory(email="me@example.com")
        assert policy.is_allowed_recipient("me@example.com", user)
        assert not policy.is_allowed_recipient("you@example.com", user)

    def test_both_rules_must_allow(self, settings):
        set_reports(
            settings,
            EMAIL_ALLOWED_DOMAINS=["example.com"],
            EMAIL_RECIPIENT_POLICY=f"{__name__}.refuse_blocked",
        )
        assert policy.refused_recipients(
            ["a@example.com", "ceo@example.com", "a@gmail.com"], None
        ) == ["ceo@example.com", "a@gmail.com"]

    def test_a_hook_that_raises_refuses_and_is_logged(self, settings, caplog):
        set_reports(settings, EMAIL_RECIPIENT_POLICY=f"{__name__}.broken_policy")
        assert not policy.is_allowed_recipient("a@example.com", None)
        assert "EMAIL_RECIPIENT_POLICY raised" in caplog.text


# -- when a schedule is saved --------------------------------------------------------------
class TestSaving:
    def test_api_create_names_the_refused_addresses(self, auth_client, settings):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["example.com"])
        payload = {
            **NUMBERS,
            "send_email": True,
            "email_recipients": ["boss@example.com", "me@gmail.com", "x@evil.net"],
        }
        response = auth_client.post(SCHEDULES_URL, payload, format="json")

        assert response.status_code == 400
        [message] = response.json()["email_recipients"]
        assert "me@gmail.com, x@evil.net" in message
        assert "boss@example.com" not in message
        assert "Allowed domains: example.com" in message
        assert not ReportSchedule.objects.exists()

    def test_api_create_with_allowed_addresses(self, auth_client, settings):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=[".example.com"])
        payload = {**NUMBERS, "send_email": True, "email_recipients": ["a@team.example.com"]}
        response = auth_client.post(SCHEDULES_URL, payload, format="json")
        assert response.status_code == 201, response.json()

    def test_off_by_default(self, auth_client):
        payload = {**NUMBERS, "send_email": True, "email_recipients": ["me@gmail.com"]}
        assert auth_client.post(SCHEDULES_URL, payload, format="json").status_code == 201

    def test_api_update_checks_a_changed_list(self, auth_client, user, settings):
        schedule = make_schedule(user, send_email=True, email_recipients=["a@example.com"])
        set_reports(settings, EMAIL_RECIPIENT_POLICY=f"{__name__}.refuse_blocked")
        url = f"{SCHEDULES_URL}{schedule.pk}/"

        response = auth_client.patch(
            url, {"email_recipients": ["a@example.com", "CEO@example.com"]}, format="json"
        )

        assert response.status_code == 400
        assert "CEO@example.com" in response.json()["email_recipients"][0]
        schedule.refresh_from_db()
        assert schedule.email_recipients == ["a@example.com"]

    def test_an_unrelated_edit_keeps_a_stored_list(self, user, settings):
        """As stored webhook URLs: the send filters them again, an edit of the title passes."""
        schedule = make_schedule(user, send_email=True, email_recipients=["me@gmail.com"])
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["example.com"])

        cleaned = validate_schedule({"title": "Renamed"}, owner=user, instance=schedule)

        assert cleaned["email_recipients"] == ["me@gmail.com"]

    def test_the_hook_is_given_the_owner(self, user, settings):
        set_reports(settings, EMAIL_RECIPIENT_POLICY=f"{__name__}.only_own_address")
        own = validate_schedule(
            {**NUMBERS, "send_email": True, "email_recipients": [user.email]}, owner=user
        )
        assert own["email_recipients"] == [user.email]
        with pytest.raises(Exception) as info:
            validate_schedule(
                {**NUMBERS, "send_email": True, "email_recipients": ["boss@example.com"]},
                owner=user,
            )
        assert "boss@example.com" in str(info.value.detail["email_recipients"][0])

    def test_admin_form_shows_the_field_error(self, admin_client, user, settings):
        from tests.test_schedules_admin import form_data

        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["corp.example"])
        add = reverse("admin:django_async_reports_reportschedule_add")

        response = admin_client.post(add, form_data(owner=str(user.pk)))

        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "boss@example.com" in errors["email_recipients"][0]
        assert not ReportSchedule.objects.exists()


class TestReportRequest:
    def test_refused_requester_address_is_a_400_on_send_email(self, auth_client, user, settings):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["corp.example"])
        response = auth_client.post(
            REPORTS_URL, {"report_type": "numbers", "send_email": True}, format="json"
        )
        assert response.status_code == 400
        assert user.email in response.json()["send_email"][0]

    def test_without_send_email_the_address_is_not_judged(
        self, auth_client, settings, captured_dispatches
    ):
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["corp.example"])
        response = auth_client.post(REPORTS_URL, {"report_type": "numbers"}, format="json")
        assert response.status_code == 201, response.json()


# -- at send time ---------------------------------------------------------------------------
class TestSending:
    def test_refused_recipients_are_left_out_and_noted(self, owner, settings):
        _schedule, report, execution = scheduled_report(
            owner,
            schedule_fields={"email_recipients": ["manager@example.com", "me@gmail.com"]},
            execution_fields={"email_status": Delivery.PENDING},
        )
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["example.com"])

        assert email.deliver_scheduled(report, execution) == Delivery.SENT

        [message] = mail.outbox
        assert message.to == ["manager@example.com"]
        execution.refresh_from_db()
        assert execution.note == "Not e-mailed (recipients policy): me@gmail.com."

    def test_none_left_skips_the_email_with_the_reason(self, owner, settings, caplog):
        _schedule, report, execution = scheduled_report(
            owner, execution_fields={"email_status": Delivery.PENDING}
        )
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["corp.example"])

        assert email.deliver_scheduled(report, execution) == Delivery.SKIPPED

        assert mail.outbox == []
        execution.refresh_from_db()
        assert execution.email_status == Delivery.SKIPPED
        assert "manager@example.com, team@example.com" in execution.note
        assert "refused by the recipients policy" in caplog.text

    def test_the_owners_failure_email_follows_the_policy(self, owner, settings):
        schedule = make_email_schedule(owner)
        report = ReportFactory(user=owner, status="failed", error_message="Timeout")
        execution = make_report_execution(schedule, report, email_status=Delivery.PENDING)
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["corp.example"])

        assert email.deliver_scheduled(report, execution) == Delivery.SKIPPED
        assert mail.outbox == []

    def test_the_requesters_own_email_is_not_sent_to_a_refused_address(self, user, settings):
        report = run_report(ReportFactory(user=user, send_email=True, parameters={"count": 1}))
        assert len(mail.outbox) == 1  # allowed by default
        mail.outbox.clear()
        set_reports(settings, EMAIL_ALLOWED_DOMAINS=["corp.example"])

        assert email.send_report_email(report) == 0
        assert mail.outbox == []


# -- system checks -------------------------------------------------------------------------
class TestChecks:
    def messages(self, settings, **values):
        from django_async_reports.security_checks import check_security_settings as check_settings

        set_reports(settings, **values)
        return {m.id: m.msg for m in check_settings()}

    def test_defaults_pass(self, settings):
        found = self.messages(settings)
        assert not {"django_async_reports.E030", "django_async_reports.E031"} & set(found)

    @pytest.mark.parametrize(
        "value", ["example.com", [""], ["a@example.com"], [3], ["exa mple.com"], {"x": 1}]
    )
    def test_invalid_domains(self, settings, value):
        assert "django_async_reports.E030" in self.messages(settings, EMAIL_ALLOWED_DOMAINS=value)

    def test_an_empty_list_warns(self, settings):
        found = self.messages(settings, EMAIL_ALLOWED_DOMAINS=[])
        assert "django_async_reports.W010" in found

    def test_a_policy_that_does_not_import(self, settings):
        found = self.messages(settings, EMAIL_RECIPIENT_POLICY="tests.nowhere.policy")
        assert "tests.nowhere.policy" in found["django_async_reports.E031"]

    def test_a_policy_that_is_not_callable(self, settings):
        found = self.messages(settings, EMAIL_RECIPIENT_POLICY=f"{__name__}.BLOCKED")
        assert "must name a callable" in found["django_async_reports.E031"]

    def test_manage_py_check_passes_with_a_valid_policy(self, settings):
        set_reports(
            settings,
            EMAIL_ALLOWED_DOMAINS=[".example.com"],
            EMAIL_RECIPIENT_POLICY=f"{__name__}.refuse_blocked",
        )
        call_command("check")


def test_schedules_module_uses_the_shared_rule(user, settings):
    """The service functions (no API) judge recipients too."""
    set_reports(settings, EMAIL_ALLOWED_DOMAINS=["example.com"])
    with pytest.raises(Exception) as info:
        schedules.create_schedule(
            owner=user, **NUMBERS, send_email=True, email_recipients=["x@gmail.com"]
        )
    assert "x@gmail.com" in str(info.value)
