"""Per-user request rates on create, regenerate and run-now (``THROTTLE_RATES``).

Counted with the cache's atomic ``incr``: concurrent requests cannot get past
the rate (``tests/e2e/test_security_e2e.py`` sends them from threads against
a live server). A cache that is down lets requests through.
"""

from __future__ import annotations

import pytest

from django_async_reports.api.throttles import ActionRateThrottle
from django_async_reports.models import Report
from django_async_reports.services.limits import parse_rate
from tests.factories import ReportFactory
from tests.helpers import make_schedule

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"


def rates(settings, **values):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "THROTTLE_RATES": values}


def create(client):
    return client.post(URL, {"report_type": "numbers", "force": True}, format="json")


def test_parse_rate():
    assert parse_rate("60/minute") == (60, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("100/hour") == (100, 3600)
    assert parse_rate("1000/day") == (1000, 86400)
    for bad in ("60", "x/minute", "60/fortnight", "-1/minute"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_defaults_throttle_create_at_60_a_minute(
    auth_client, other_client, user, settings, captured_dispatches
):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "MAX_ACTIVE_REPORTS_PER_USER": None}
    answers = [create(auth_client).status_code for _ in range(61)]
    assert answers.count(201) == 60 and answers[-1] == 429
    throttled = create(auth_client)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["detail"].startswith("Request was throttled.")
    assert Report.objects.filter(user=user).count() == 60
    assert create(other_client).status_code == 201  # per user


def test_regenerate_and_run_now_have_rates_of_their_own(
    auth_client, user, settings, captured_dispatches
):
    rates(settings, regenerate="1/minute", run_now="1/minute")
    report = ReportFactory(user=user, status="completed")
    schedule = make_schedule(user)
    assert auth_client.post(f"{URL}{report.pk}/regenerate/").status_code == 201
    assert auth_client.post(f"{URL}{report.pk}/regenerate/").status_code == 429
    assert auth_client.post(f"{URL}schedules/{schedule.pk}/run-now/").status_code == 201
    assert auth_client.post(f"{URL}schedules/{schedule.pk}/run-now/").status_code == 429
    # Create is not throttled when the setting leaves it out; reads never are.
    assert create(auth_client).status_code == 201
    for _ in range(5):
        assert auth_client.get(URL).status_code == 200


def test_none_turns_throttling_off(auth_client, settings, captured_dispatches):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "THROTTLE_RATES": None}
    assert all(create(auth_client).status_code == 201 for _ in range(3))
    rates(settings, create=None)
    assert create(auth_client).status_code == 201


class BrokenCache:
    """A cache whose server is down: every call raises, as django-redis does."""

    def add(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    incr = add


def test_a_cache_that_is_down_lets_requests_through(
    auth_client, settings, monkeypatch, captured_dispatches, caplog
):
    rates(settings, create="1/minute")
    monkeypatch.setattr("django_async_reports.api.throttles.caches", {"default": BrokenCache()})
    assert [create(auth_client).status_code for _ in range(3)] == [201, 201, 201]
    assert "create not throttled: the cache failed" in caplog.text


def test_the_throttle_waits_until_the_window_ends(rf, user, settings):
    rates(settings, create="2/minute")
    throttle = ActionRateThrottle("create")
    request = rf.post(URL)
    request.user = user
    assert throttle.allow_request(request, None) and throttle.allow_request(request, None)
    assert not throttle.allow_request(request, None)
    assert 0 < throttle.wait() <= 60
