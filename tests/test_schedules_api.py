"""The schedules REST API in-process (dispatch captured): every route, every bad input."""

from __future__ import annotations

import datetime
import socket
import zoneinfo

import pytest
from django.utils import timezone

from django_async_reports import schedules
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.helpers import make_schedule

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/schedules/"

# The seed's example, verbatim.
SEED_PAYLOAD = {
    "report_type": "sales",
    "title": "Weekly Sales Report",
    "frequency": "weekly",
    "parameters": {"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"},
    "send_email": True,
    "email_recipients": ["manager@example.com"],
}

NUMBERS = {"report_type": "numbers", "frequency": "daily", "parameters": {"count": 2}}

# Webhook hosts are resolved when saved (and again at each send): no real DNS here.
FAKE_DNS = {"hooks.example.com": "93.184.215.14", "intranet.example.com": "10.1.2.3"}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in FAKE_DNS:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (FAKE_DNS[host], port or 443))]
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def detail(schedule, action=""):
    return f"{URL}{schedule.pk}/{action + '/' if action else ''}"


def make_execution(schedule, due_at, **fields):
    return ScheduleExecution.objects.create(schedule=schedule, due_at=due_at, **fields)


@pytest.fixture
def schedule(user):
    return make_schedule(user)


@pytest.fixture
def others_schedule(other_user):
    return make_schedule(other_user, title="Bob's")


# -- create ---------------------------------------------------------------------------
class TestCreate:
    def test_seed_payload_is_accepted_verbatim(self, auth_client, user):
        response = auth_client.post(URL, SEED_PAYLOAD, format="json")

        assert response.status_code == 201, response.json()
        body = response.json()
        schedule = ReportSchedule.objects.get(pk=body["id"])
        assert schedule.owner == user
        assert response["Location"].endswith(f"{URL}{schedule.pk}/")
        assert body["report_type"] == "sales"
        assert body["report_type_label"] == "Sales report"
        assert body["title"] == "Weekly Sales Report"
        assert body["frequency"] == "weekly"
        # Template variables are stored as written, rendered at each run.
        assert body["parameters"] == SEED_PAYLOAD["parameters"]
        assert schedule.parameters == SEED_PAYLOAD["parameters"]
        assert body["send_email"] is True
        assert body["email_recipients"] == ["manager@example.com"]
        # Defaults, stated explicitly in the representation.
        assert body["weekday"] == 0 and body["day_of_month"] is None
        assert body["cron_expression"] == ""
        assert body["time_of_day"] == "08:00:00"
        assert body["timezone"] == "UTC"
        assert body["priority"] == "normal"
        assert body["enabled"] is True and body["skip_if_empty"] is False
        assert body["webhook_url"] == "" and body["webhook_secret"] == ""
        # Computed by the service layer.
        next_run = datetime.datetime.fromisoformat(body["next_run_at"].replace("Z", "+00:00"))
        assert next_run > timezone.now()
        assert next_run.weekday() == 0 and (next_run.hour, next_run.minute) == (8, 0)
        assert body["last_run_at"] is None and body["last_execution"] is None
        assert body["executions_url"].endswith(f"{URL}{schedule.pk}/executions/")
        for field in ("created_at", "updated_at"):
            assert body[field]

    def test_every_field(self, auth_client):
        payload = {
            "report_type": "numbers",
            "title": "Month end",
            "priority": "high",
            "frequency": "monthly",
            "day_of_month": 31,
            "time_of_day": "06:30",
            "timezone": "Europe/Paris",
            "enabled": False,
            "send_email": True,
            "email_recipients": ["a@example.com", "b@example.com", "A@example.com"],
            "webhook_url": "https://hooks.example.com/reports?team=1",
            "skip_if_empty": True,
            "parameters": {"count": 3, "text": "since {{last_success_at}}"},
        }
        response = auth_client.post(URL, payload, format="json")

        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["priority"] == "high"
        assert body["day_of_month"] == 31 and body["weekday"] is None
        assert body["time_of_day"] == "06:30:00"
        assert body["timezone"] == "Europe/Paris"
        assert body["enabled"] is False
        # Duplicates (case-insensitive) are dropped, the first spelling kept.
        assert body["email_recipients"] == ["a@example.com", "b@example.com"]
        assert body["webhook_url"] == "https://hooks.example.com/reports?team=1"
        assert body["skip_if_empty"] is True
        assert body["parameters"]["text"] == "since {{last_success_at}}"

    def test_webhook_gets_a_secret_shown_to_the_owner_but_not_in_lists(self, auth_client):
        response = auth_client.post(
            URL, {**NUMBERS, "webhook_url": "https://hooks.example.com/in"}, format="json"
        )

        assert response.status_code == 201, response.json()
        schedule = ReportSchedule.objects.get()
        secret = response.json()["webhook_secret"]
        assert secret == schedule.webhook_secret and len(secret) >= 32
        assert auth_client.get(detail(schedule)).json()["webhook_secret"] == secret
        assert "webhook_secret" not in auth_client.get(URL).json()["results"][0]

    def test_webhook_to_an_allowed_private_network(self, auth_client, settings):
        payload = {**NUMBERS, "webhook_url": "http://127.0.0.1:9000/hook"}
        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "WEBHOOK_ALLOWED_NETWORKS": [],
            "WEBHOOK_ALLOWED_PORTS": None,
        }
        response = auth_client.post(URL, payload, format="json")
        assert response.status_code == 400
        assert "not public" in response.json()["webhook_url"][0]

        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "WEBHOOK_ALLOWED_PORTS": None,  # loopback receivers on random ports
        }
        response = auth_client.post(URL, payload, format="json")
        assert response.status_code == 201, response.json()

    def test_custom_schedule_normalises_the_cron_expression(self, auth_client):
        response = auth_client.post(
            URL,
            {**NUMBERS, "frequency": "custom", "cron_expression": " 0  7 * *  1-5 "},
            format="json",
        )

        assert response.status_code == 201, response.json()
        assert response.json()["cron_expression"] == "0 7 * * 1-5"
        assert response.json()["weekday"] is None

    def test_a_cron_expression_longer_than_its_column_is_a_400(self, auth_client):
        # Hourly on every day of the month: long, and within MIN_CRON_INTERVAL.
        every_minute = "0 " + ",".join(map(str, range(24))) + " " + ",".join(map(str, range(1, 32)))
        every_minute += " * *"
        assert len(every_minute) > 120
        response = auth_client.post(
            URL,
            {**NUMBERS, "frequency": "custom", "cron_expression": every_minute},
            format="json",
        )
        assert response.status_code == 400, response.content
        assert response.json() == {
            "cron_expression": ["Ensure this field has no more than 120 characters."]
        }

    def test_title_defaults_to_the_report_type_label(self, auth_client):
        response = auth_client.post(URL, NUMBERS, format="json")

        assert response.status_code == 201
        assert response.json()["title"] == "Numbers"

    def test_parameters_default_to_the_generators_defaults(self, auth_client):
        response = auth_client.post(
            URL, {"report_type": "numbers", "frequency": "daily"}, format="json"
        )

        assert response.status_code == 201, response.json()

    def test_read_only_fields_are_ignored(self, auth_client, other_user):
        response = auth_client.post(
            URL,
            {
                **NUMBERS,
                "webhook_secret": "mine",
                "next_run_at": "2000-01-01T00:00:00Z",
                "owner": other_user.pk,
            },
            format="json",
        )

        assert response.status_code == 201
        schedule = ReportSchedule.objects.get()
        assert schedule.webhook_secret != "mine"
        assert schedule.next_run_at > timezone.now()
        assert schedule.owner.username == "alice"

    def test_anonymous_is_401(self, api_client):
        assert api_client.post(URL, SEED_PAYLOAD, format="json").status_code == 401
        assert not ReportSchedule.objects.exists()


def _many(n):
    return [f"r{i}@example.com" for i in range(n)]


BAD_INPUTS = [
    pytest.param({"report_type": "nope"}, {"report_type"}, id="unknown-report-type"),
    pytest.param({"report_type": None}, {"report_type"}, id="null-report-type"),
    pytest.param({"frequency": "hourly"}, {"frequency"}, id="bad-frequency"),
    pytest.param({"frequency": None}, {"frequency"}, id="null-frequency"),
    pytest.param({"frequency": "custom"}, {"cron_expression"}, id="custom-without-cron"),
    pytest.param(
        {"frequency": "custom", "cron_expression": "  "}, {"cron_expression"}, id="custom-blank"
    ),
    pytest.param(
        {"frequency": "custom", "cron_expression": "61 * * * *"},
        {"cron_expression"},
        id="custom-bad-minute",
    ),
    pytest.param(
        {"frequency": "custom", "cron_expression": "0 8 * *"},
        {"cron_expression"},
        id="custom-four-fields",
    ),
    pytest.param(
        {"frequency": "custom", "cron_expression": "0 8 30 2 *"},
        {"cron_expression"},
        id="custom-never-matches",
    ),
    pytest.param({"cron_expression": "0 8 * * *"}, {"cron_expression"}, id="cron-on-daily"),
    pytest.param({"weekday": 3}, {"weekday"}, id="weekday-on-daily"),
    pytest.param({"frequency": "weekly", "weekday": 7}, {"weekday"}, id="weekday-7"),
    pytest.param({"frequency": "weekly", "weekday": -1}, {"weekday"}, id="weekday-negative"),
    pytest.param({"frequency": "weekly", "weekday": "monday"}, {"weekday"}, id="weekday-text"),
    pytest.param({"day_of_month": 5}, {"day_of_month"}, id="day-of-month-on-daily"),
    pytest.param({"frequency": "monthly", "day_of_month": 0}, {"day_of_month"}, id="day-0"),
    pytest.param({"frequency": "monthly", "day_of_month": 32}, {"day_of_month"}, id="day-32"),
    pytest.param({"time_of_day": "25:00"}, {"time_of_day"}, id="bad-time"),
    pytest.param({"timezone": "Mars/Olympus_Mons"}, {"timezone"}, id="bad-timezone"),
    pytest.param({"timezone": ""}, {"timezone"}, id="blank-timezone"),
    pytest.param({"timezone": "+02:00"}, {"timezone"}, id="offset-not-a-zone"),
    pytest.param(
        {"email_recipients": ["ok@example.com", "not-an-address"]},
        {"email_recipients"},
        id="bad-email",
    ),
    pytest.param({"email_recipients": "a@example.com"}, {"email_recipients"}, id="emails-string"),
    pytest.param({"email_recipients": _many(21)}, {"email_recipients"}, id="too-many-recipients"),
    pytest.param({"send_email": True}, {"email_recipients"}, id="send-email-no-recipient"),
    pytest.param(
        {"send_email": True, "email_recipients": []},
        {"email_recipients"},
        id="send-email-empty-recipients",
    ),
    pytest.param({"webhook_url": "ftp://example.com/x"}, {"webhook_url"}, id="webhook-ftp"),
    pytest.param({"webhook_url": "javascript:alert(1)"}, {"webhook_url"}, id="webhook-js"),
    pytest.param({"webhook_url": "not a url"}, {"webhook_url"}, id="webhook-not-url"),
    pytest.param(
        {"webhook_url": "https://user:secret@hooks.example.com/x"},
        {"webhook_url"},
        id="webhook-credentials",
    ),
    pytest.param(
        {"webhook_url": "https://user@hooks.example.com/x"},
        {"webhook_url"},
        id="webhook-username",
    ),
    pytest.param(
        {"webhook_url": "https://example.com/" + "x" * 500}, {"webhook_url"}, id="webhook-long"
    ),
    pytest.param({"webhook_url": "http://10.0.0.5/hook"}, {"webhook_url"}, id="webhook-private"),
    pytest.param(
        {"webhook_url": "http://169.254.169.254/latest/meta-data/"},
        {"webhook_url"},
        id="webhook-metadata",
    ),
    pytest.param({"webhook_url": "http://[::1]:8000/"}, {"webhook_url"}, id="webhook-ipv6-lo"),
    pytest.param(
        {"webhook_url": "https://intranet.example.com/hook"},
        {"webhook_url"},
        id="webhook-resolves-private",
    ),
    pytest.param(
        {"webhook_url": "https://nowhere.invalid/hook"},
        {"webhook_url"},
        id="webhook-unresolvable",
    ),
    pytest.param({"priority": "asap"}, {"priority"}, id="bad-priority"),
    pytest.param({"title": "t" * 300}, {"title"}, id="long-title"),
    pytest.param({"parameters": [1, 2]}, {"parameters"}, id="parameters-list"),
    pytest.param({"parameters": "x"}, {"parameters"}, id="parameters-string"),
    pytest.param({"parameters": {"count": "many"}}, {"parameters"}, id="parameters-invalid"),
    pytest.param({"parameters": {"text": "x" * 20000}}, {"parameters"}, id="parameters-oversized"),
    pytest.param({"parameters": {"text": "{{next_year}}"}}, {"parameters"}, id="unknown-variable"),
    pytest.param({"enabled": "perhaps"}, {"enabled"}, id="bad-boolean"),
]


class TestCreateBadInput:
    @pytest.mark.parametrize(("changes", "errors"), BAD_INPUTS)
    def test_400_with_field_errors(self, auth_client, changes, errors, captured_dispatches):
        response = auth_client.post(URL, {**NUMBERS, **changes}, format="json")

        assert response.status_code == 400, response.json()
        assert set(response.json()) == errors, response.json()
        assert not ReportSchedule.objects.exists()
        assert not captured_dispatches

    def test_missing_required_fields(self, auth_client):
        response = auth_client.post(URL, {}, format="json")

        assert response.status_code == 400
        assert set(response.json()) == {"report_type", "frequency"}

    def test_unknown_type_message_lists_known_types(self, auth_client):
        response = auth_client.post(URL, {**NUMBERS, "report_type": "nope"}, format="json")

        message = response.json()["report_type"][0]
        assert '"nope" is not a known report type' in message
        assert "numbers" in message and "sales" in message

    def test_bad_email_errors_are_per_item(self, auth_client):
        response = auth_client.post(
            URL,
            {**NUMBERS, "email_recipients": ["ok@example.com", "nope", "also bad@x"]},
            format="json",
        )

        errors = response.json()["email_recipients"]
        assert set(errors) == {"1", "2"}
        assert errors["1"] == ["Enter a valid email address."]

    def test_recipient_limit_follows_the_setting(self, auth_client, settings):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "MAX_EMAIL_RECIPIENTS": 2}
        response = auth_client.post(URL, {**NUMBERS, "email_recipients": _many(3)}, format="json")
        assert response.status_code == 400
        assert response.json()["email_recipients"] == [
            "At most 2 recipients are allowed (3 given)."
        ]
        response = auth_client.post(URL, {**NUMBERS, "email_recipients": _many(2)}, format="json")
        assert response.status_code == 201

    def test_cron_errors_say_why(self, auth_client):
        response = auth_client.post(
            URL, {**NUMBERS, "frequency": "custom", "cron_expression": "0 8 * *"}, format="json"
        )
        assert "5 fields" in response.json()["cron_expression"][0]
        response = auth_client.post(URL, {**NUMBERS, "frequency": "custom"}, format="json")
        assert "needs a cron expression" in response.json()["cron_expression"][0]
        response = auth_client.post(URL, {**NUMBERS, "cron_expression": "0 8 * * *"}, format="json")
        assert 'Only a "custom" schedule' in response.json()["cron_expression"][0]

    def test_timezone_error_names_the_zone(self, auth_client):
        response = auth_client.post(URL, {**NUMBERS, "timezone": "Europe/Pariss"}, format="json")
        assert "Europe/Pariss" in response.json()["timezone"][0]

    def test_generator_errors_are_nested_under_parameters(self, auth_client):
        response = auth_client.post(
            URL,
            {
                **SEED_PAYLOAD,
                "parameters": {"start_date": "{{last_week_end}}", "end_date": "{{month_start}}"},
            },
            format="json",
        )
        # Whether end < start depends on today's date; the shape does not.
        if response.status_code == 400:
            assert set(response.json()["parameters"]) == {"end_date"}
        response = auth_client.post(
            URL, {**SEED_PAYLOAD, "parameters": {"start_date": "2024-01-01"}}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"parameters": {"end_date": ["This field is required."]}}
        response = auth_client.post(
            URL,
            {**SEED_PAYLOAD, "parameters": {"start_date": "{{today}}", "end_date": "soon"}},
            format="json",
        )
        assert set(response.json()["parameters"]) == {"end_date"}

    def test_unknown_template_variable_is_named(self, auth_client):
        response = auth_client.post(
            URL,
            {
                **SEED_PAYLOAD,
                "parameters": {"start_date": "{{last_week_begin}}", "end_date": "{{today}}"},
            },
            format="json",
        )

        assert response.status_code == 400
        assert "last_week_begin" in str(response.json()["parameters"])

    def test_template_syntax_is_never_evaluated(self, auth_client):
        response = auth_client.post(
            URL, {**NUMBERS, "parameters": {"text": "{0.__class__} {% now %}"}}, format="json"
        )
        assert response.status_code == 201
        assert response.json()["parameters"]["text"] == "{0.__class__} {% now %}"

    def test_malformed_json(self, auth_client):
        response = auth_client.generic("POST", URL, "{not json", content_type="application/json")

        assert response.status_code == 400
        assert "JSON parse error" in response.json()["detail"]
        assert not ReportSchedule.objects.exists()

    def test_json_array_body(self, auth_client):
        response = auth_client.post(URL, [SEED_PAYLOAD], format="json")

        assert response.status_code == 400
        assert "non_field_errors" in response.json()


# -- list -------------------------------------------------------------------------------
class TestList:
    def test_only_own_schedules_newest_first_without_secrets(self, auth_client, user, other_user):
        first = make_schedule(user, title="first")
        second = make_schedule(user, title="second", frequency="weekly")
        make_schedule(other_user, title="not mine")
        make_execution(first, timezone.now(), status="completed", row_count=2)

        response = auth_client.get(URL)

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 2
        assert [s["id"] for s in body["results"]] == [str(second.pk), str(first.pk)]
        for item in body["results"]:
            assert "webhook_secret" not in item
        by_title = {s["title"]: s for s in body["results"]}
        assert by_title["second"]["last_execution"] is None
        assert by_title["first"]["last_execution"]["status"] == "completed"

    def test_filters_and_ordering(self, auth_client, user):
        make_schedule(user, title="b", enabled=False)
        make_schedule(
            user,
            title="a",
            frequency="weekly",
            report_type="sales",
            parameters={"start_date": "{{today}}", "end_date": "{{today}}"},
        )

        def titles(query):
            return [s["title"] for s in auth_client.get(URL + query).json()["results"]]

        assert titles("?enabled=false") == ["b"]
        assert titles("?frequency=weekly") == ["a"]
        assert titles("?report_type=numbers") == ["b"]
        assert titles("?ordering=title") == ["a", "b"]

    def test_pagination(self, auth_client, user):
        for n in range(23):
            make_schedule(user, title=f"s{n}")

        first = auth_client.get(URL).json()
        assert first["count"] == 23 and len(first["results"]) == 20 and first["next"]
        assert len(auth_client.get(URL + "?page=2").json()["results"]) == 3
        assert len(auth_client.get(URL + "?page_size=5").json()["results"]) == 5

    def test_query_count_does_not_grow_with_rows(
        self, auth_client, user, django_assert_max_num_queries
    ):
        for n in range(15):
            s = make_schedule(user, title=f"s{n}")
            make_execution(s, timezone.now())
        auth_client.get(URL)

        with django_assert_max_num_queries(6):
            response = auth_client.get(URL)
        assert response.json()["count"] == 15

    def test_anonymous_is_401(self, api_client, schedule):
        assert api_client.get(URL).status_code == 401


# -- detail, update, delete ----------------------------------------------------------------
class TestDetail:
    def test_owner_sees_everything(self, auth_client, schedule):
        execution = make_execution(schedule, timezone.now(), status="failed", error="boom")

        response = auth_client.get(detail(schedule))

        assert response.status_code == 200
        body = response.json()
        assert body["id"] == str(schedule.pk)
        assert body["webhook_secret"] == schedule.webhook_secret
        assert body["last_execution"]["id"] == execution.pk
        assert body["last_execution"]["error"] == "boom"

    def test_other_user_and_unknown_ids_are_404(self, auth_client, others_schedule):
        assert auth_client.get(detail(others_schedule)).status_code == 404
        assert auth_client.get(f"{URL}00000000-0000-0000-0000-000000000000/").status_code == 404
        assert auth_client.get(f"{URL}not-a-uuid/").status_code == 404

    def test_anonymous_is_401(self, api_client, schedule):
        assert api_client.get(detail(schedule)).status_code == 401

    def test_reports_routes_still_work_beside_schedules(self, auth_client, user):
        from tests.factories import ReportFactory

        report = ReportFactory(user=user)
        assert auth_client.get(f"/api/v1/reports/{report.pk}/").status_code == 200
        assert auth_client.get("/api/v1/reports/").json()["count"] == 1


class TestUpdate:
    def test_patch_a_field(self, auth_client, schedule):
        response = auth_client.patch(detail(schedule), {"title": "Renamed"}, format="json")

        assert response.status_code == 200, response.json()
        assert response.json()["title"] == "Renamed"
        schedule.refresh_from_db()
        assert schedule.title == "Renamed"

    def test_patch_timing_recomputes_next_run(self, auth_client, schedule):
        response = auth_client.patch(
            detail(schedule),
            {
                "frequency": "weekly",
                "weekday": 4,
                "time_of_day": "17:45",
                "timezone": "America/New_York",
            },
            format="json",
        )

        assert response.status_code == 200, response.json()
        schedule.refresh_from_db()
        local = schedule.next_run_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
        assert local.weekday() == 4 and (local.hour, local.minute) == (17, 45)

    def test_changing_frequency_clears_fields_that_no_longer_apply(self, auth_client, user):
        weekly = make_schedule(user, frequency="weekly", weekday=3)
        custom = make_schedule(user, frequency="custom", cron_expression="0 7 * * *")

        response = auth_client.patch(detail(weekly), {"frequency": "monthly"}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["weekday"] is None and response.json()["day_of_month"] == 1

        response = auth_client.patch(detail(custom), {"frequency": "daily"}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["cron_expression"] == ""

    def test_patch_to_custom_needs_a_cron_expression(self, auth_client, schedule):
        response = auth_client.patch(detail(schedule), {"frequency": "custom"}, format="json")

        assert response.status_code == 400
        assert set(response.json()) == {"cron_expression"}
        schedule.refresh_from_db()
        assert schedule.frequency == "daily"

    def test_patch_send_email_needs_recipients(self, auth_client, schedule):
        response = auth_client.patch(detail(schedule), {"send_email": True}, format="json")

        assert response.status_code == 400
        assert set(response.json()) == {"email_recipients"}

    @pytest.mark.parametrize(("changes", "errors"), BAD_INPUTS)
    def test_patch_bad_input_is_400_and_changes_nothing(
        self, auth_client, schedule, changes, errors
    ):
        before = ReportSchedule.objects.values().get(pk=schedule.pk)

        response = auth_client.patch(detail(schedule), changes, format="json")

        assert response.status_code == 400, response.json()
        assert set(response.json()) == errors
        assert ReportSchedule.objects.values().get(pk=schedule.pk) == before

    def test_parameters_are_validated_against_a_new_report_type(self, auth_client, schedule):
        # The numbers parameters mean nothing to the sales generator.
        response = auth_client.patch(detail(schedule), {"report_type": "sales"}, format="json")

        assert response.status_code == 400
        assert set(response.json()["parameters"]) == {"start_date", "end_date"}

    def test_disabling_does_not_revalidate_stored_parameters(self, auth_client, schedule):
        # Parameters a generator no longer accepts must not block disabling.
        ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "many"})

        response = auth_client.patch(detail(schedule), {"enabled": False}, format="json")

        assert response.status_code == 200, response.json()
        assert response.json()["enabled"] is False

    def test_put_replaces_the_schedule(self, auth_client, schedule):
        response = auth_client.put(detail(schedule), SEED_PAYLOAD, format="json")

        assert response.status_code == 200, response.json()
        schedule.refresh_from_db()
        assert schedule.report_type == "sales" and schedule.frequency == "weekly"
        assert schedule.weekday == 0
        assert schedule.email_recipients == ["manager@example.com"]

    def test_put_needs_the_required_fields(self, auth_client, schedule):
        response = auth_client.put(detail(schedule), {"title": "x"}, format="json")

        assert response.status_code == 400
        assert set(response.json()) == {"report_type", "frequency"}

    def test_put_of_its_own_representation_round_trips(self, auth_client, user):
        schedule = make_schedule(
            user, frequency="custom", cron_expression="*/15 * * * *", webhook_url=""
        )
        body = auth_client.get(detail(schedule)).json()

        response = auth_client.put(detail(schedule), body, format="json")

        assert response.status_code == 200, response.json()

    def test_secret_cannot_be_set(self, auth_client, schedule):
        secret = schedule.webhook_secret
        auth_client.patch(detail(schedule), {"webhook_secret": "mine"}, format="json")
        schedule.refresh_from_db()
        assert schedule.webhook_secret == secret

    def test_other_user_gets_404_and_nothing_changes(self, other_client, schedule):
        assert (
            other_client.patch(detail(schedule), {"title": "Hacked"}, format="json").status_code
            == 404
        )
        assert other_client.put(detail(schedule), SEED_PAYLOAD, format="json").status_code == 404
        schedule.refresh_from_db()
        assert schedule.title == "Numbers every day"

    def test_anonymous_is_401(self, api_client, schedule):
        assert api_client.patch(detail(schedule), {"title": "x"}, format="json").status_code == 401
        assert api_client.put(detail(schedule), SEED_PAYLOAD, format="json").status_code == 401


class TestDelete:
    def test_owner_deletes_with_its_executions_but_not_its_reports(
        self, auth_client, schedule, user
    ):
        from tests.factories import ReportFactory

        report = ReportFactory(user=user)
        make_execution(schedule, timezone.now(), report=report)

        response = auth_client.delete(detail(schedule))

        assert response.status_code == 204
        assert not ReportSchedule.objects.exists()
        assert not ScheduleExecution.objects.exists()
        assert Report.objects.filter(pk=report.pk).exists()
        assert auth_client.get(detail(schedule)).status_code == 404

    def test_other_user_and_anonymous(self, other_client, api_client, schedule):
        assert other_client.delete(detail(schedule)).status_code == 404
        assert api_client.delete(detail(schedule)).status_code == 401
        assert ReportSchedule.objects.filter(pk=schedule.pk).exists()


# -- toggle ------------------------------------------------------------------------------
class TestToggle:
    def test_toggle_twice(self, auth_client, schedule):
        response = auth_client.post(detail(schedule, "toggle"))

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"id", "enabled", "next_run_at", "message"}
        assert body["id"] == str(schedule.pk)
        assert body["enabled"] is False
        assert body["message"] == "Schedule disabled."
        schedule.refresh_from_db()
        assert schedule.enabled is False

        response = auth_client.post(detail(schedule, "toggle"))

        body = response.json()
        assert body["enabled"] is True
        assert body["message"] == "Schedule enabled."
        schedule.refresh_from_db()
        assert schedule.enabled is True
        assert body["next_run_at"] is not None
        next_run = datetime.datetime.fromisoformat(body["next_run_at"].replace("Z", "+00:00"))
        assert next_run == schedule.next_run_at
        assert next_run > timezone.now()

    def test_explicit_state_is_idempotent(self, auth_client, schedule):
        for _ in range(2):
            response = auth_client.post(
                detail(schedule, "toggle"), {"enabled": False}, format="json"
            )
            assert response.status_code == 200
            assert response.json()["enabled"] is False
        schedule.refresh_from_db()
        assert schedule.enabled is False

    def test_a_timing_that_no_longer_computes_cannot_be_enabled(self, auth_client, user):
        schedule = make_schedule(user, enabled=False)
        ReportSchedule.objects.filter(pk=schedule.pk).update(timezone="Mars/Olympus_Mons")

        response = auth_client.post(detail(schedule, "toggle"))

        assert response.status_code == 400
        assert "cannot be enabled" in response.json()["non_field_errors"][0]
        schedule.refresh_from_db()
        assert schedule.enabled is False

    def test_bad_body(self, auth_client, schedule):
        response = auth_client.post(detail(schedule, "toggle"), {"enabled": "maybe"}, format="json")

        assert response.status_code == 400
        assert set(response.json()) == {"enabled"}

    def test_other_user_anonymous_and_get(self, other_client, api_client, auth_client, schedule):
        assert other_client.post(detail(schedule, "toggle")).status_code == 404
        assert api_client.post(detail(schedule, "toggle")).status_code == 401
        assert auth_client.get(detail(schedule, "toggle")).status_code == 405
        schedule.refresh_from_db()
        assert schedule.enabled is True


# -- run now -------------------------------------------------------------------------------
class TestRunNow:
    def test_creates_and_dispatches_a_report_recorded_as_manual_execution(
        self, auth_client, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        schedule = schedules.create_schedule(owner=user, **SEED_PAYLOAD)

        with django_capture_on_commit_callbacks(execute=True):
            response = auth_client.post(detail(schedule, "run-now"))

        assert response.status_code == 201, response.json()
        body = response.json()
        execution = ScheduleExecution.objects.get(pk=body["id"])
        assert execution.schedule_id == schedule.pk
        assert body["schedule"] == str(schedule.pk)
        assert body["trigger"] == "manual"
        report = Report.objects.get(pk=body["report_id"])
        assert execution.report_id == report.pk
        assert body["report_status"] == report.status
        assert body["report_url"].endswith(f"/api/v1/reports/{report.pk}/")
        assert report.user == user
        assert report.report_type == "sales"
        assert report.title.startswith("Weekly Sales Report")
        # Parameters rendered in the schedule's zone: last week, Monday to Sunday.
        start = datetime.date.fromisoformat(report.parameters["start_date"])
        end = datetime.date.fromisoformat(report.parameters["end_date"])
        assert start.weekday() == 0 and end - start == datetime.timedelta(days=6)
        assert end < timezone.now().date()
        assert [r.pk for r in captured_dispatches] == [report.pk]
        for field in ("row_count", "file_size", "email_status", "webhook_status", "error"):
            assert field in body

    def test_the_run_is_listed_and_summarised(self, auth_client, schedule, captured_dispatches):
        run = auth_client.post(detail(schedule, "run-now")).json()

        executions = auth_client.get(detail(schedule, "executions")).json()
        assert [e["id"] for e in executions["results"]] == [run["id"]]
        assert auth_client.get(detail(schedule)).json()["last_execution"]["id"] == run["id"]

    def test_parameters_no_longer_valid_give_a_failed_execution(
        self, auth_client, schedule, captured_dispatches
    ):
        # Say the generator's parameters changed since the schedule was saved.
        ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "many"})

        response = auth_client.post(detail(schedule, "run-now"))

        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "failed"
        assert body["report_id"] is None and body["report_status"] is None
        assert "count" in body["error"]
        assert not Report.objects.exists()
        assert not captured_dispatches

    # Real commits: the dispatch happens when run_now's transaction commits,
    # before the response is written.
    @pytest.mark.django_db(transaction=True)
    def test_broker_down_the_run_waits_for_the_queue(self, auth_client, schedule, monkeypatch):
        def refuse(report, step, **kwargs):
            raise ConnectionError("broker down")

        monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)

        response = auth_client.post(detail(schedule, "run-now"))

        assert response.status_code == 201
        body = response.json()
        report = Report.objects.get(pk=body["report_id"])
        assert (report.status, report.next_step) == ("pending", "generate")
        assert report.progress_message == "Waiting for the queue"
        assert (body["report_status"], body["status"], body["error"]) == (
            "pending",
            "running",
            "",
        )

    def test_runs_a_disabled_schedule_too(
        self, auth_client, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        schedule = make_schedule(user, enabled=False)

        with django_capture_on_commit_callbacks(execute=True):
            response = auth_client.post(detail(schedule, "run-now"))

        assert response.status_code == 201
        assert len(captured_dispatches) == 1

    def test_other_user_anonymous_and_get(
        self, other_client, api_client, auth_client, schedule, captured_dispatches
    ):
        assert other_client.post(detail(schedule, "run-now")).status_code == 404
        assert api_client.post(detail(schedule, "run-now")).status_code == 401
        assert auth_client.get(detail(schedule, "run-now")).status_code == 405
        assert not ScheduleExecution.objects.exists()
        assert not Report.objects.exists()
        assert not captured_dispatches


# -- executions ------------------------------------------------------------------------------
class TestExecutions:
    def test_paginated_newest_first_with_report_and_delivery(self, auth_client, user, schedule):
        from tests.factories import ReportFactory

        start = timezone.now() - datetime.timedelta(days=30)
        for day in range(25):
            make_execution(schedule, start + datetime.timedelta(days=day), status="completed")
        report = ReportFactory(user=user, status="completed")
        newest = make_execution(
            schedule,
            start + datetime.timedelta(days=26),
            status="completed",
            report=report,
            row_count=12,
            file_size=345,
            email_status="sent",
            webhook_status="failed",
            error="webhook: 500",
        )
        make_execution(make_schedule(user, title="other"), timezone.now())

        response = auth_client.get(detail(schedule, "executions"))

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 26
        assert len(body["results"]) == 20 and body["next"]
        due = [e["due_at"] for e in body["results"]]
        assert due == sorted(due, reverse=True)
        first = body["results"][0]
        assert first["id"] == newest.pk
        assert first["report_id"] == str(report.pk)
        assert first["report_status"] == "completed"
        assert first["row_count"] == 12 and first["file_size"] == 345
        assert first["email_status"] == "sent" and first["webhook_status"] == "failed"
        assert first["error"] == "webhook: 500"
        page2 = auth_client.get(detail(schedule, "executions") + "?page=2").json()
        assert len(page2["results"]) == 6
        assert page2["results"][-1]["due_at"] < due[-1]
        assert page2["results"][0]["report_id"] is None
        assert page2["results"][0]["report_status"] is None
        small = auth_client.get(detail(schedule, "executions") + "?page_size=5").json()
        assert len(small["results"]) == 5

    def test_empty(self, auth_client, schedule):
        body = auth_client.get(detail(schedule, "executions")).json()
        assert body["count"] == 0 and body["results"] == []

    def test_other_user_anonymous_and_post(self, other_client, api_client, auth_client, schedule):
        make_execution(schedule, timezone.now())
        assert other_client.get(detail(schedule, "executions")).status_code == 404
        assert api_client.get(detail(schedule, "executions")).status_code == 401
        assert auth_client.post(detail(schedule, "executions")).status_code == 405
