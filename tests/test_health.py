"""The health endpoint on the real services, and on services pointed at closed ports."""

from __future__ import annotations

import time

import pytest
from celery import current_app

import tests.celery_app  # noqa: F401  (the test Celery app, current: the test broker)
from django_async_reports import health
from django_async_reports.conf import report_settings
from django_async_reports.storage import list_files, storage_root
from tests.helpers import set_reports

pytestmark = pytest.mark.django_db

URL = "/ops/health/"
SECRET = "s3cretPassw0rd"
#: Nothing listens there: a service that is down.
CLOSED = "127.0.0.1:1"


def assert_no_secret(response):
    body = response.content.decode()
    assert SECRET not in body
    assert CLOSED not in body
    assert "redis://" not in body and "amqp://" not in body


def test_all_services_up_is_ok_with_real_latencies(client):
    response = client.get(URL)  # anonymous: no authentication on the ops endpoints

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "ok"
    assert list(data["checks"]) == ["database", "broker", "cache", "storage"]
    for name, check in data["checks"].items():
        assert check["ok"] is True, (name, check)
        assert 0 < check["latency_ms"] < 2000, (name, check)
        assert "error" not in check
    assert response["Cache-Control"].startswith("max-age=0")


def test_storage_check_leaves_no_file(client):
    assert client.get(URL).json()["checks"]["storage"]["ok"] is True

    assert not [name for name in list_files(storage_root()) if ".health-" in name]


def test_cache_down_is_degraded_and_says_no_secret(client, settings):
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://:{SECRET}@{CLOSED}/0",
        },
    }
    set_reports(settings, CACHE="down")

    response = client.get(URL)

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "degraded"
    cache = data["checks"]["cache"]
    assert cache["ok"] is False
    assert cache["error"].startswith("A service the report depends on could not be reached.")
    assert "Reference: " in cache["error"]
    assert all(data["checks"][name]["ok"] for name in ("database", "broker", "storage"))
    assert_no_secret(response)


def test_broker_down_is_down_503_and_says_no_secret(client, monkeypatch):
    monkeypatch.setitem(current_app.conf, "broker_url", f"amqp://guest:{SECRET}@{CLOSED}//")

    response = client.get(URL)

    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "down"
    assert data["checks"]["broker"]["ok"] is False
    assert data["checks"]["broker"]["latency_ms"] < 2000
    assert data["checks"]["database"]["ok"] is True
    assert_no_secret(response)


def test_storage_down_is_degraded_and_names_no_path(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # the storage's root cannot be made under a file
    settings.STORAGES = {
        **settings.STORAGES,
        "broken": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "root")},
        },
    }
    set_reports(settings, STORAGE="broken")

    response = client.get(URL)

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "degraded"
    assert data["checks"]["storage"]["ok"] is False
    assert data["checks"]["storage"]["error"].startswith("The file could not be stored.")
    assert str(tmp_path) not in response.content.decode()


def test_a_hung_check_is_down_after_the_timeout(settings):
    set_reports(settings, HEALTH_CHECK_TIMEOUT=0.3)

    def hangs(timeout):
        time.sleep(3)

    started = time.monotonic()
    body = health.run_checks({"database": health.check_database, "broker": hangs})

    assert time.monotonic() - started < 1.5
    assert body["status"] == "down"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {
        "ok": False,
        "latency_ms": body["checks"]["broker"]["latency_ms"],
        "error": "No answer within 0.3 s.",
    }
    assert 300 <= body["checks"]["broker"]["latency_ms"] < 1500


def test_timeout_setting_default_and_override(settings):
    assert report_settings.HEALTH_CHECK_TIMEOUT == 2.0
    set_reports(settings, HEALTH_CHECK_TIMEOUT=0.5)
    assert report_settings.HEALTH_CHECK_TIMEOUT == 0.5


def test_only_get_and_head(client):
    assert client.post(URL).status_code == 405
    assert client.head(URL).status_code == 200
