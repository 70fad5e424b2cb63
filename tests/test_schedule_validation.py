"""The one schedule validator: what it returns, its options, and one message per rule everywhere.

``validate_schedule`` is called directly here; the last tests send the same bad input
through the service functions, the API and the admin form and expect the same words.
"""

from __future__ import annotations

import json
import socket
from datetime import time

import pytest
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from django_async_reports import schedules, services
from django_async_reports.models import ReportSchedule
from django_async_reports.schedules import validate_schedule
from django_async_reports.schedules.validation import EDITABLE_FIELDS

pytestmark = pytest.mark.django_db

NUMBERS = {"report_type": "numbers", "frequency": "daily", "parameters": {"count": 2}}
API = "/api/v1/reports/schedules/"
ADMIN_ADD = reverse("admin:django_async_reports_reportschedule_add")


def errors(data, **kwargs):
    with pytest.raises(ValidationError) as info:
        validate_schedule(data, **kwargs)
    return info.value.detail


@pytest.fixture
def fake_dns(monkeypatch):
    """hooks.example.com is public, intranet.example.com private: no real DNS."""
    answers = {"hooks.example.com": "93.184.215.14", "intranet.example.com": "10.1.2.3"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# -- what it returns -------------------------------------------------------------------
class TestCleaned:
    def test_every_editable_field_with_defaults_filled_in(self, user):
        cleaned = validate_schedule(
            {"report_type": "numbers", "frequency": "weekly", "title": "  Weekly  "}, owner=user
        )

        assert tuple(cleaned) == EDITABLE_FIELDS
        assert cleaned["title"] == "Weekly"
        assert cleaned["weekday"] == 0 and cleaned["day_of_month"] is None
        assert cleaned["cron_expression"] == ""
        assert cleaned["time_of_day"] == time(8, 0) and cleaned["timezone"] == "UTC"
        assert cleaned["priority"] == "normal"
        assert cleaned["format"] == services.resolve_format("numbers", None)
        assert cleaned["parameters"] == {}
        assert cleaned["email_recipients"] == [] and cleaned["webhook_url"] == ""
        assert (cleaned["enabled"], cleaned["send_email"], cleaned["compress"]) == (
            True,
            False,
            False,
        )

    def test_title_defaults_to_the_label_and_text_is_normalised(self, user):
        cleaned = validate_schedule(
            {
                **NUMBERS,
                "title": "",
                "frequency": "custom",
                "cron_expression": "  0 9  * * 1-5 ",
                "time_of_day": "09:30:15.500000",
                "timezone": " Europe/Paris ",
                "email_recipients": ["a@example.com", " B@example.com", "A@EXAMPLE.com"],
            },
            owner=user,
        )

        assert cleaned["title"] == "Numbers"
        assert cleaned["cron_expression"] == "0 9 * * 1-5"
        assert cleaned["time_of_day"] == time(9, 30, 15)
        assert cleaned["timezone"] == "Europe/Paris"
        # Duplicates dropped case-insensitively, the first spelling kept.
        assert cleaned["email_recipients"] == ["a@example.com", "B@example.com"]

    def test_idempotent(self, user):
        data = {**NUMBERS, "frequency": "monthly", "email_recipients": ["x@example.com"] * 2}
        once = validate_schedule(data, owner=user)
        assert validate_schedule(once, owner=user) == once

    def test_update_keeps_stored_values_and_leaves_the_instance_alone(self, user):
        schedule = schedules.create_schedule(owner=user, **NUMBERS, title="Stored")
        before = ReportSchedule.objects.values().get(pk=schedule.pk)

        cleaned = validate_schedule(
            {"frequency": "weekly", "weekday": 4}, owner=user, instance=schedule
        )

        assert cleaned["title"] == "Stored" and cleaned["parameters"] == {"count": 2}
        assert (cleaned["frequency"], cleaned["weekday"]) == ("weekly", 4)
        assert (schedule.frequency, schedule.weekday) == ("daily", None)
        assert ReportSchedule.objects.values().get(pk=schedule.pk) == before

    def test_an_unknown_field_is_a_programming_error(self, user):
        with pytest.raises(TypeError, match="next_run_at, owner"):
            validate_schedule({**NUMBERS, "owner": user, "next_run_at": None}, owner=user)


# -- fields of one frequency -----------------------------------------------------------
class TestFrequencyFields:
    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("weekday", 3, 'Only a "weekly" schedule takes weekday; this one is "daily".'),
            (
                "day_of_month",
                5,
                'Only a "monthly" schedule takes day_of_month; this one is "daily".',
            ),
            (
                "cron_expression",
                "0 8 * * *",
                'Only a "custom" schedule takes a cron expression; this one is "daily".',
            ),
        ],
    )
    def test_refused_or_cleared(self, user, field, value, message):
        data = {**NUMBERS, field: value}
        assert errors(data, owner=user, refuse_unused_fields=True) == {field: [message]}
        cleaned = validate_schedule(data, owner=user)
        assert cleaned[field] == ("" if field == "cron_expression" else None)

    def test_empty_values_are_never_refused(self, user):
        data = {**NUMBERS, "weekday": None, "day_of_month": None, "cron_expression": "  "}
        cleaned = validate_schedule(data, owner=user, refuse_unused_fields=True)
        assert (cleaned["weekday"], cleaned["day_of_month"], cleaned["cron_expression"]) == (
            None,
            None,
            "",
        )

    def test_stored_fields_are_cleared_when_the_frequency_changes(self, user):
        schedule = schedules.create_schedule(owner=user, **{**NUMBERS, "frequency": "weekly"})
        cleaned = validate_schedule(
            {"frequency": "monthly"}, owner=user, instance=schedule, refuse_unused_fields=True
        )
        assert (cleaned["weekday"], cleaned["day_of_month"]) == (None, 1)


# -- values a direct caller may pass -----------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"frequency": "hourly"}, {"frequency"}),
        ({"priority": None}, {"priority"}),
        ({"frequency": "weekly", "weekday": "monday"}, {"weekday"}),
        ({"frequency": "weekly", "weekday": True}, {"weekday"}),
        ({"frequency": "monthly", "day_of_month": 31.0}, {"day_of_month"}),
        ({"frequency": "custom", "cron_expression": 5}, {"cron_expression"}),
        ({"time_of_day": 800}, {"time_of_day"}),
        ({"timezone": None}, {"timezone"}),
        ({"enabled": "yes"}, {"enabled"}),
        ({"title": 12}, {"title"}),
        ({"title": "t" * 256}, {"title"}),
        ({"format": "docx"}, {"format"}),
        ({"format": 3}, {"format"}),
        ({"email_recipients": "a@example.com"}, {"email_recipients"}),
        ({"email_recipients": [None, "a@" + "x" * 260 + ".com"]}, {"email_recipients"}),
        ({"webhook_url": 42}, {"webhook_url"}),
        ({"report_type": ["numbers"]}, {"report_type"}),
        ({"parameters": "count=2"}, {"parameters"}),
    ],
)
def test_wrong_values_fail_the_rule_they_break(user, changes, expected):
    assert set(errors({**NUMBERS, **changes}, owner=user)) == expected


def test_every_field_is_checked_at_once(user):
    detail = errors(
        {
            **NUMBERS,
            "frequency": "custom",
            "timezone": "Nowhere/Land",
            "priority": "asap",
            "email_recipients": ["ok@example.com", "nope"],
            "webhook_url": "ftp://example.com/",
        },
        owner=user,
    )
    assert set(detail) == {
        "cron_expression",
        "timezone",
        "priority",
        "email_recipients",
        "webhook_url",
    }
    assert detail["email_recipients"] == {"1": ["Enter a valid email address."]}


def test_parameters_none_means_an_empty_object(user):
    assert validate_schedule({**NUMBERS, "parameters": None}, owner=user)["parameters"] == {}


def test_parameters_are_validated_for_the_owner(user):
    # The sales generator requires its dates: the owner's context reaches it.
    detail = errors({"report_type": "sales", "frequency": "daily"}, owner=user)
    assert set(detail["parameters"]) == {"start_date", "end_date"}


def test_a_generator_since_removed_refuses_every_edit(user):
    schedule = schedules.create_schedule(owner=user, **NUMBERS)
    ReportSchedule.objects.filter(pk=schedule.pk).update(report_type="retired")
    schedule.refresh_from_db()

    detail = errors({"title": "New"}, owner=user, instance=schedule)

    assert list(detail) == ["report_type"]
    assert detail["report_type"][0].startswith('"retired" is not a known report type.')


# -- the webhook URL -------------------------------------------------------------------------
class TestWebhookURL:
    def test_host_names_are_resolved_unless_told_not_to(self, user, fake_dns):
        data = {**NUMBERS, "webhook_url": "https://intranet.example.com/hook"}
        assert "not public" in errors(data, owner=user)["webhook_url"][0]
        cleaned = validate_schedule(data, owner=user, resolve_webhook_host=False)
        assert cleaned["webhook_url"] == "https://intranet.example.com/hook"
        public = {**NUMBERS, "webhook_url": " https://hooks.example.com/in "}
        assert validate_schedule(public, owner=user)["webhook_url"] == (
            "https://hooks.example.com/in"
        )

    def test_literal_addresses_are_always_checked(self, user):
        data = {**NUMBERS, "webhook_url": "http://10.0.0.5/hook"}
        detail = errors(data, owner=user, resolve_webhook_host=False)
        assert "not public" in detail["webhook_url"][0]

    def test_a_stored_url_is_checked_again_only_when_it_changes(self, user, settings):
        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "WEBHOOK_ALLOWED_PORTS": None,  # loopback receivers on random ports
        }
        schedule = schedules.create_schedule(
            owner=user, **NUMBERS, webhook_url="http://127.0.0.1:9000/hook"
        )
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "WEBHOOK_ALLOWED_NETWORKS": []}

        # Unrelated edits still go through; the send-time check refuses the URL.
        cleaned = validate_schedule({"title": "Renamed"}, owner=user, instance=schedule)
        assert cleaned["webhook_url"] == "http://127.0.0.1:9000/hook"
        detail = errors(
            {"webhook_url": "http://127.0.0.1:9001/hook"}, owner=user, instance=schedule
        )
        assert "not public" in detail["webhook_url"][0]


# -- one message per rule, through every caller --------------------------------------------
RULES = [
    pytest.param(
        {"frequency": "custom", "cron_expression": ""},
        "cron_expression",
        'A "custom" schedule needs a cron expression, such as "0 8 * * 1-5".',
        id="cron-needed",
    ),
    pytest.param(
        {"frequency": "custom", "cron_expression": "61 * * * *"},
        "cron_expression",
        "Invalid cron expression '61 * * * *': Bad minute. Its 5 fields are minute hour "
        "day-of-month month day-of-week, for example '0 8 * * 1-5'.",
        id="cron-bad",
    ),
    pytest.param(
        {"timezone": "Mars/Olympus_Mons"},
        "timezone",
        "'Mars/Olympus_Mons' is not a known IANA time zone; use a name such as "
        "'Europe/Paris', 'America/New_York' or 'UTC'.",
        id="timezone",
    ),
    pytest.param(
        {"send_email": True, "email_recipients": []},
        "email_recipients",
        "Give at least one recipient when send_email is true (add your own address to "
        "receive the report yourself).",
        id="no-recipient",
    ),
    pytest.param(
        {"email_recipients": [f"r{n}@example.com" for n in range(21)]},
        "email_recipients",
        "At most 20 recipients are allowed (21 given).",
        id="too-many-recipients",
    ),
    pytest.param(
        {"webhook_url": "ftp://93.184.215.14/"},
        "webhook_url",
        "Enter a valid http:// or https:// URL.",
        id="webhook-scheme",
    ),
    pytest.param(
        {"webhook_url": "http://10.0.0.5/hook"},
        "webhook_url",
        "The address 10.0.0.5 is not public (loopback, private, link-local, multicast or "
        "reserved); webhooks may only reach public addresses.",
        id="webhook-private",
    ),
    pytest.param(
        {"parameters": {"text": "{{next_year}}"}},
        "parameters",
        "Unknown template variable(s): next_year. Known variables: today, yesterday, "
        "week_start, week_end, last_week_start, last_week_end, month_start, month_end, "
        "last_month_start, last_month_end, quarter_start, quarter_end, last_quarter_start, "
        "last_quarter_end, year_start, year_end, last_year_start, last_year_end, "
        "last_success_at.",
        id="unknown-variable",
    ),
]


def admin_form_data(user, changes):
    data = {
        "owner": str(user.pk),
        "title": "Numbers",
        "report_type": "numbers",
        "priority": "normal",
        "parameters": '{"count": 2}',
        "frequency": "daily",
        "time_of_day": "08:00:00",
        "timezone": "UTC",
        "enabled": "on",
        "email_recipients": "",
        "webhook_url": "",
    }
    for name, value in changes.items():
        if name == "send_email":
            data[name] = "on"
        elif name == "email_recipients":
            data[name] = "\n".join(value)
        elif name == "parameters":
            data[name] = json.dumps(value)
        else:
            data[name] = value
    return data


@pytest.mark.parametrize(("changes", "field", "message"), RULES)
def test_the_service_the_api_and_the_admin_say_the_same(
    user, auth_client, admin_client, changes, field, message
):
    with pytest.raises(ValidationError) as info:
        schedules.create_schedule(owner=user, **{**NUMBERS, **changes})
    assert info.value.detail[field] == [message]

    response = auth_client.post(API, {**NUMBERS, **changes}, format="json")
    assert response.status_code == 400
    assert response.json()[field] == [message]

    response = admin_client.post(ADMIN_ADD, admin_form_data(user, changes))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message]
    assert not ReportSchedule.objects.exists()
