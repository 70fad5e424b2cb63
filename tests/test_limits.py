"""How much: the per-user caps, parameter nesting, the cron interval, the running-place wait.

The caps are checked and taken under a per-user lock in one transaction:
``tests/e2e/test_security_e2e.py`` proves it with concurrent requests against a
live server.
"""

from __future__ import annotations

import datetime

import pytest

from django_async_reports import services
from django_async_reports.exceptions import LimitExceeded
from django_async_reports.models import Report, ReportSchedule
from django_async_reports.schedules import times
from tests.factories import ReportFactory
from tests.helpers import make_schedule

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
SCHEDULES = URL + "schedules/"


def limit(settings, **values):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **values}


def post_numbers(client, count):
    return client.post(
        URL, {"report_type": "numbers", "parameters": {"count": count}}, format="json"
    )


class TestActiveReports:
    def test_a_fresh_install_allows_50_active_reports_and_answers_429_to_the_51st(
        self, auth_client, user, other_user, captured_dispatches
    ):
        ReportFactory.create_batch(49, user=user, status="pending")
        assert post_numbers(auth_client, 1).status_code == 201  # the 50th

        response = post_numbers(auth_client, 2)

        assert response.status_code == 429
        assert response.headers["Retry-After"] == "30"
        assert response.json()["detail"].startswith(
            "You have 50 reports pending or processing, the most allowed at once."
        )
        assert Report.objects.filter(user=user).count() == 50
        # Finished reports free their place; another user has places of their own.
        Report.objects.filter(user=user, status="pending").update(status="completed")
        assert post_numbers(auth_client, 3).status_code == 201
        assert services.request_report(user=other_user, report_type="numbers")

    def test_the_cap_is_a_setting_and_none_turns_it_off(self, user, settings, captured_dispatches):
        limit(settings, MAX_ACTIVE_REPORTS_PER_USER=1, LIMIT_RETRY_AFTER=7)
        services.request_report(user=user, report_type="numbers")
        with pytest.raises(LimitExceeded) as caught:
            services.request_report(user=user, report_type="numbers")
        assert caught.value.retry_after == 7
        limit(settings, MAX_ACTIVE_REPORTS_PER_USER=None)
        for _ in range(3):
            services.request_report(user=user, report_type="numbers")
        assert Report.objects.filter(user=user).count() == 4

    def test_joining_an_identical_running_report_takes_no_place(
        self, auth_client, user, settings, captured_dispatches
    ):
        limit(settings, MAX_ACTIVE_REPORTS_PER_USER=1, REUSE_WINDOW_SECONDS=3600)
        first = post_numbers(auth_client, 5)
        again = post_numbers(auth_client, 5)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["outcome"] == "joined"
        assert post_numbers(auth_client, 6).status_code == 429

    def test_regenerate_and_retry_count_too(self, auth_client, user, settings, captured_dispatches):
        limit(settings, MAX_ACTIVE_REPORTS_PER_USER=1)
        done = ReportFactory(user=user, status="completed")
        failed = ReportFactory(user=user, status="failed")
        ReportFactory(user=user, status="processing")

        assert auth_client.post(f"{URL}{done.pk}/regenerate/").status_code == 429
        with pytest.raises(LimitExceeded):
            services.retry_report(failed)
        assert Report.objects.get(pk=failed.pk).status == "failed"

    def test_run_now_at_the_cap_is_a_429_with_no_run_recorded(
        self, auth_client, user, settings, captured_dispatches
    ):
        schedule = make_schedule(user)
        limit(settings, MAX_ACTIVE_REPORTS_PER_USER=1)
        ReportFactory(user=user, status="pending")
        response = auth_client.post(f"{SCHEDULES}{schedule.pk}/run-now/")
        assert response.status_code == 429
        assert "Retry-After" in response.headers
        assert not schedule.executions.exists()


class TestSchedules:
    def test_the_schedule_cap(self, auth_client, user, settings):
        limit(settings, MAX_SCHEDULES_PER_USER=2)
        make_schedule(user)
        payload = {"report_type": "numbers", "frequency": "daily", "parameters": {"count": 1}}
        assert auth_client.post(SCHEDULES, payload, format="json").status_code == 201
        response = auth_client.post(SCHEDULES, payload, format="json")
        assert response.status_code == 429
        assert response.json()["detail"].startswith("You have 2 schedules, the most allowed.")
        assert ReportSchedule.objects.filter(owner=user).count() == 2
        limit(settings, MAX_SCHEDULES_PER_USER=None)
        assert auth_client.post(SCHEDULES, payload, format="json").status_code == 201

    def test_default_cap_is_25(self, user):
        for _ in range(25):
            make_schedule(user)
        with pytest.raises(LimitExceeded):
            make_schedule(user)


class TestCronInterval:
    @pytest.mark.parametrize(
        ("expression", "minutes"),
        [
            ("* * * * *", 1),
            ("*/2 * * * *", 2),
            ("*/5 * * * *", 5),
            ("0-4 8 1 1 *", 1),
            ("0 8 * * *", 1440),
            ("0,30 8 * * 1-5", 30),
        ],
    )
    def test_shortest_interval(self, expression, minutes):
        assert times.shortest_cron_interval(expression) == datetime.timedelta(minutes=minutes)

    def test_a_cron_more_frequent_than_the_minimum_is_refused(self, auth_client, settings):
        payload = {"report_type": "numbers", "frequency": "custom", "parameters": {"count": 1}}
        response = auth_client.post(
            SCHEDULES, {**payload, "cron_expression": "* * * * *"}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["cron_expression"] == [
            "Runs may be at least 5 minutes apart; this expression runs 1 minute apart."
        ]
        ok = auth_client.post(
            SCHEDULES, {**payload, "cron_expression": "*/5 * * * *"}, format="json"
        )
        assert ok.status_code == 201
        limit(settings, MIN_CRON_INTERVAL=None)
        response = auth_client.post(
            SCHEDULES, {**payload, "cron_expression": "* * * * *"}, format="json"
        )
        assert response.status_code == 201

    def test_a_kept_expression_stays_valid_when_the_minimum_grows(
        self, auth_client, user, settings
    ):
        schedule = make_schedule(user, frequency="custom", cron_expression="*/5 * * * *")
        limit(settings, MIN_CRON_INTERVAL=3600)
        url = f"{SCHEDULES}{schedule.pk}/"
        assert auth_client.patch(url, {"title": "Still every 5"}, format="json").status_code == 200
        changed = auth_client.patch(url, {"cron_expression": "*/10 * * * *"}, format="json")
        assert changed.status_code == 400
        assert "60 minutes apart" in changed.json()["cron_expression"][0]


class TestParameters:
    def nested(self, depth):
        value = 1
        for _ in range(depth - 1):
            value = [value]
        return {"deep": value}

    def test_nesting_beyond_the_limit_is_a_400(self, auth_client, settings, captured_dispatches):
        body = {"report_type": "numbers", "parameters": self.nested(6)}
        response = auth_client.post(URL, body, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "parameters": ["Parameters may nest lists and objects at most 5 levels deep."]
        }
        limit(settings, MAX_PARAMETERS_DEPTH=None)
        response = auth_client.post(URL, body, format="json")
        assert response.status_code == 201  # the generator's serializer ignores "deep"

    def test_a_hostile_nesting_is_a_400_never_a_500(self, auth_client, captured_dispatches):
        body = '{"report_type": "numbers", "parameters": {"x": ' + "[" * 5000 + "]" * 5000 + "}}"
        response = auth_client.post(URL, body, content_type="application/json")
        assert response.status_code == 400
        # The decoder gives up on it (Python 3.10-3.12), or reads it and the depth
        # limit answers (3.13 reads deeper): a 400 with words either way.
        assert response.json() in (
            {"detail": "JSON parse error - the document is nested too deeply."},
            {"parameters": ["Parameters may nest lists and objects at most 5 levels deep."]},
        )
        # Deep, but within what the decoder reads: the depth limit answers.
        body = '{"report_type": "numbers", "parameters": {"x": ' + "[" * 500 + "]" * 500 + "}}"
        response = auth_client.post(URL, body, content_type="application/json")
        assert response.status_code == 400
        assert "levels deep" in response.json()["parameters"][0]
        assert not Report.objects.exists()


class TestRunningPlaces:
    def test_a_claim_beyond_the_owners_running_places_waits_for_the_sweeper(
        self, user, other_user, settings
    ):
        limit(settings, MAX_RUNNING_PER_USER=1)
        ReportFactory(user=user, status="processing")
        waiting = ReportFactory(user=user, status="pending")
        other = ReportFactory(user=other_user, status="pending")

        assert services.claim_report(waiting.pk) is None
        waiting.refresh_from_db()
        assert (waiting.status, waiting.next_step) == ("pending", "generate")
        assert waiting.progress_message == "Waiting: 1 of your reports are running"
        assert waiting.next_step_at is not None
        # Another user's report is claimed at once.
        assert services.claim_report(other.pk).status == "processing"
        # Once a place is free, the same report is claimed.
        Report.objects.filter(user=user, status="processing").update(status="completed")
        assert services.claim_report(waiting.pk).status == "processing"

    def test_off_by_default(self, user):
        ReportFactory.create_batch(5, user=user, status="processing")
        assert services.claim_report(ReportFactory(user=user, status="pending").pk) is not None


class TestHandOver:
    def test_a_report_ending_sends_the_owners_oldest_waiting_report_at_once(
        self, user, settings, captured_dispatches, django_capture_on_commit_callbacks
    ):
        limit(settings, MAX_RUNNING_PER_USER=1)
        running = ReportFactory(user=user, status="processing")
        first = ReportFactory(user=user, status="pending")
        second = ReportFactory(user=user, status="pending")
        assert services.claim_report(first.pk) is None  # waits for a place
        assert services.claim_report(second.pk) is None

        with django_capture_on_commit_callbacks(execute=True):
            services.fail_report(running.pk, "Gone.")

        # Not at the sweeper's next pass: now, the oldest first.
        assert [(r.pk, step) for r, step, _ in captured_dispatches.steps if step == "generate"] == [
            (first.pk, "generate")
        ]
        assert services.claim_report(first.pk).status == "processing"

    def test_nothing_is_sent_when_the_limit_is_off(
        self, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        running = ReportFactory(user=user, status="processing")
        ReportFactory(user=user, status="pending", next_step="generate")
        with django_capture_on_commit_callbacks(execute=True):
            services.cancel_report(running)
        assert [step for _r, step, _c in captured_dispatches.steps] == ["notify"]


class TestChecks:
    @pytest.mark.parametrize(
        ("name", "value", "check_id"),
        [
            ("MAX_ACTIVE_REPORTS_PER_USER", 0, "E024"),
            ("MAX_SCHEDULES_PER_USER", "10", "E024"),
            ("MAX_RUNNING_PER_USER", True, "E024"),
            ("MIN_CRON_INTERVAL", -1, "E024"),
            ("THROTTLE_RATES", "60/minute", "E025"),
            ("THROTTLE_RATES", {"create": "sixty"}, "E025"),
            ("THROTTLE_RATES", {"download": "1/s"}, "E025"),
            ("PRIORITIES_WITHOUT_PERMISSION", ["asap"], "E026"),
            ("PRIORITIES_WITHOUT_PERMISSION", "low", "E026"),
        ],
    )
    def test_bad_values_are_reported(self, settings, name, value, check_id):
        from django_async_reports.security_checks import check_security_settings

        limit(settings, **{name: value})
        assert f"django_async_reports.{check_id}" in {m.id for m in check_security_settings()}

    def test_defaults_and_none_pass(self, settings):
        from django_async_reports.security_checks import check_security_settings

        assert check_security_settings() == []
        limit(
            settings,
            MAX_ACTIVE_REPORTS_PER_USER=None,
            MAX_SCHEDULES_PER_USER=None,
            MAX_RUNNING_PER_USER=None,
            MIN_CRON_INTERVAL=None,
            MAX_PARAMETERS_DEPTH=None,
            THROTTLE_RATES=None,
        )
        assert check_security_settings() == []
        limit(settings, THROTTLE_RATES={"create": None, "run_now": "5/hour"})
        assert check_security_settings() == []
