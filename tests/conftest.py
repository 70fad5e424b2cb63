"""Shared fixtures. Every test runs against the real services: nothing skips."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.loopback_servers import SMTPServer, WebhookReceiver
from tests.s3_server import create_private_bucket, delete_bucket, s3_server


@pytest.fixture(autouse=True)
def _clean_media_and_cache(settings):
    from django.core.cache import cache

    cache.clear()
    yield
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="bob")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(user):
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


@pytest.fixture
def other_client(other_user):
    token, _ = Token.objects.get_or_create(user=other_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


class CapturedDispatches(list):
    """The reports whose generation was sent, in order; ``steps`` has every step sent."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[Any, str, Any]] = []


@pytest.fixture
def no_throttles(settings):
    """THROTTLE_RATES off, for tests sending many requests whose subject is not the rates.

    The IDOR matrices use it: a throttle answers before the object is looked up,
    the same for any id, so a 429 would tell nothing about whether an id exists.
    """
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "THROTTLE_RATES": None}


@pytest.fixture
def captured_dispatches(monkeypatch):
    """Record the messages sent instead of publishing them: for unit tests of one function.

    A test runs the steps it wants itself (``services.notify_report(pk)``...).
    """
    sent = CapturedDispatches()

    def publish_step(report, step, *, countdown=None):
        sent.steps.append((report, step, countdown))
        if step == "generate":
            sent.append(report)

    monkeypatch.setattr("django_async_reports.services.publishing.publish_step", publish_step)
    return sent


def pytest_report_header(config):
    host = settings.DATABASES["default"]["HOST"]
    return f"async-reports: database {host}, broker {settings.CELERY_BROKER_URL}"


def close_streamed_file(response):
    """Close a FileResponse's file without ``response.close()``, which would also
    send request_finished and close the test's database connection."""
    for closer in response._resource_closers:
        closer()


# -- S3 ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3-compatible server (moto) on loopback, one per test module using it."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint):
    """A fresh private bucket on that server, deleted afterwards."""
    bucket = create_private_bucket(s3_endpoint)
    yield bucket
    delete_bucket(s3_endpoint, bucket)


@pytest.fixture
def s3_reports(settings, s3_endpoint, s3_bucket):
    """Report files go to the moto bucket; returns the bucket."""
    from tests.s3_server import use_s3

    use_s3(settings, s3_endpoint, s3_bucket)
    return s3_bucket


# -- loopback servers -------------------------------------------------------------------
@pytest.fixture(scope="module")
def smtp_server():
    """A real aiosmtpd server on loopback, one per test module using it."""
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server, settings):
    """The aiosmtpd server, empty, with Django's SMTP backend pointed at it."""
    smtp_server.clear()
    for name, value in smtp_server.django_settings().items():
        setattr(settings, name, value)
    return smtp_server


@pytest.fixture(scope="module")
def receiver_server():
    """A webhook receiver (HTTP server) on loopback, one per test module using it."""
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server):
    """The webhook receiver, with nothing received yet."""
    receiver_server.clear()
    return receiver_server


# -- users -------------------------------------------------------------------------------
@pytest.fixture
def owner(db):
    """The owner of the schedules of the delivery tests, with an e-mail address."""
    return UserFactory(username="olivia", email="olivia@example.com")
