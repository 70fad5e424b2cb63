"""docs/how-to/email-and-webhooks.md: its settings send a report by e-mail, and its receiver
verifies the webhooks the package really sends, over HTTP, to a live server.

The receiver view runs in pytest-django's live_server (a real HTTP server in a
thread); the package's own delivery step (``webhooks.attempt_delivery``, the
body of the ``deliver_webhook`` task) posts to it on 127.0.0.1, allowed by
``WEBHOOK_ALLOWED_NETWORKS`` for the test only.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import time
import uuid

import pytest
import requests
from django.core import mail

from django_async_reports import delivery
from django_async_reports.conf import DEFAULTS
from django_async_reports.delivery import webhooks
from django_async_reports.models import Report, WebhookDelivery
from tests.factories import ReportFactory
from tests.helpers import ROOT, run_report

SETTINGS_MODULE = "docs_src.how_to.email_and_webhooks.settings"
URLS = "docs_src.how_to.email_and_webhooks.urls"
OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-secret-of-this-receiver!").decode()


def completed_report(user, **fields) -> Report:
    report = run_report(ReportFactory(user=user, title="Q4 Sales", **fields), notify=False)
    assert report.status == Report.Status.COMPLETED, report.error_message
    return report


# -- e-mail ------------------------------------------------------------------------------
def test_every_async_reports_key_of_the_page_is_a_setting():
    page = importlib.import_module(SETTINGS_MODULE)
    assert set(page.ASYNC_REPORTS) <= set(DEFAULTS)
    assert page.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.django_db
def test_the_page_settings_mail_the_file_to_the_requester(settings, user):
    page = importlib.import_module(SETTINGS_MODULE)
    for name in ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "DEFAULT_FROM_EMAIL"):
        setattr(settings, name, getattr(page, name))
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # not SES here
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **page.ASYNC_REPORTS}
    report = completed_report(user, send_email=True)

    delivery.deliver(report)

    [message] = mail.outbox
    assert message.from_email == "Reports <reports@example.com>"
    assert message.to == ["alice@example.com"]
    assert message.subject == 'Your report "Q4 Sales" is ready'
    [(name, content, content_type)] = message.attachments
    assert name.endswith(".csv") and content_type.startswith("text/csv")
    assert content.splitlines()[0] == "n,square,text"
    link = f"https://reports.example.com/api/v1/reports/{report.pk}/download/"
    assert f"Also available (sign-in required): {link}" in message.body


@pytest.mark.django_db
def test_a_file_above_the_limit_is_linked_not_attached(settings, user):
    page = importlib.import_module(SETTINGS_MODULE)
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        **page.ASYNC_REPORTS,
        "EMAIL_ATTACHMENT_MAX_BYTES": 10,
    }
    report = completed_report(user, send_email=True)

    delivery.deliver(report)

    [message] = mail.outbox
    assert message.attachments == []
    assert "is too large to attach." in message.body
    assert f"/api/v1/reports/{report.pk}/download/" in message.body


# -- webhooks ----------------------------------------------------------------------------
@pytest.fixture(params=["stdlib", "standardwebhooks"])
def receiver(request, settings, monkeypatch, live_server, transactional_db, captured_dispatches):
    """The page's view on the live server, verifying with the stdlib or with the library.

    Returns the events the view handled. ``captured_dispatches`` keeps the
    report's own chain steps off the broker: the test delivers in-process.
    """
    views = importlib.import_module("docs_src.how_to.email_and_webhooks.views")
    if request.param == "standardwebhooks":
        from docs_src.how_to.email_and_webhooks.verify_library import verify_with_library

        monkeypatch.setattr(views, "verify_signature", verify_with_library)
    handled: list[dict] = []
    monkeypatch.setattr(views, "handle_report_event", handled.append)
    settings.ROOT_URLCONF = URLS
    settings.REPORTS_WEBHOOK_SECRET = OTHER_SECRET  # each test sets the one it needs
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],  # the test receiver is on loopback
        "WEBHOOK_ALLOWED_PORTS": None,  # ...on a random port
        "WEBHOOK_TIMEOUT": 5.0,
    }
    return handled


@pytest.fixture
def hook_url(live_server):
    return f"http://127.0.0.1:{live_server.thread.port}/hooks/reports/"


def deliver_once(report):
    """One attempt of the report's webhook, as the deliver_webhook task makes it."""
    message_id = webhooks.message_id_for(report, "report.completed")
    return webhooks.attempt_delivery(report.pk, "report.completed", message_id, 1)


def signed_post(url, secret, body, *, message_id=None, timestamp=None, tamper=None):
    """POST ``body`` signed as the package signs (its ``webhooks.sign``), optionally tampered."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhooks.sign(secret, message_id, timestamp, body),
    }
    return requests.post(url, data=tamper or body, headers=headers, timeout=10)


def test_the_receiver_accepts_a_real_delivery(settings, receiver, hook_url, user):
    report = completed_report(user, webhook_url=hook_url)
    settings.REPORTS_WEBHOOK_SECRET = delivery.webhook_secret_for_user(user)

    outcome = deliver_once(report)

    assert (outcome.outcome, outcome.status_code) == ("sent", 204), outcome.error
    [event] = receiver
    assert event["type"] == "report.completed"
    assert event["data"]["report_id"] == str(report.pk)
    attempt = WebhookDelivery.objects.get(report=report)
    assert (attempt.status_code, attempt.succeeded) == (204, True)


def test_a_delivery_signed_with_another_secret_is_refused(settings, receiver, hook_url, user):
    report = completed_report(user, webhook_url=hook_url)
    settings.REPORTS_WEBHOOK_SECRET = OTHER_SECRET

    outcome = deliver_once(report)

    # 401 is final for the sender: it does not retry.
    assert (outcome.outcome, outcome.status_code) == ("failed", 401)
    assert receiver == []


def test_tampered_old_and_unsigned_messages_are_refused(
    settings, receiver, hook_url, user, request
):
    secret = delivery.webhook_secret_for_user(user)
    settings.REPORTS_WEBHOOK_SECRET = secret
    body = json.dumps({"type": "report.completed", "data": {"report_id": "r1"}}).encode()

    tampered = signed_post(hook_url, secret, body, tamper=body.replace(b"r1", b"r2"))
    old = signed_post(hook_url, secret, body, timestamp=int(time.time()) - 6 * 60)
    future = signed_post(hook_url, secret, body, timestamp=int(time.time()) + 6 * 60)
    unsigned = requests.post(hook_url, data=body, timeout=10)
    bad_timestamp = requests.post(
        hook_url,
        data=body,
        headers={"webhook-id": "msg_1", "webhook-timestamp": "soon", "webhook-signature": "v1,x"},
        timeout=10,
    )

    assert (tampered.status_code, old.status_code, future.status_code) == (401, 401, 401)
    # The library reports missing or unreadable headers as a bad signature (401).
    malformed = 401 if request.node.callspec.params["receiver"] == "standardwebhooks" else 400
    assert (unsigned.status_code, bad_timestamp.status_code) == (malformed, malformed)
    assert receiver == []


def test_a_replayed_message_is_handled_once(settings, receiver, hook_url, user):
    secret = delivery.webhook_secret_for_user(user)
    settings.REPORTS_WEBHOOK_SECRET = secret
    body = json.dumps({"type": "report.completed", "data": {"report_id": "r1"}}).encode()
    message_id = f"msg_{uuid.uuid4().hex}"

    first = signed_post(hook_url, secret, body, message_id=message_id)
    again = signed_post(hook_url, secret, body, message_id=message_id)  # a retry, or a replay

    assert (first.status_code, again.status_code) == (204, 204)
    assert [event["data"]["report_id"] for event in receiver] == ["r1"]


def test_missing_headers_are_400_with_the_stdlib_and_401_with_the_library(
    receiver, hook_url, request
):
    expected = 401 if request.node.callspec.params["receiver"] == "standardwebhooks" else 400

    assert requests.post(hook_url, data=b"{}", timeout=10).status_code == expected
    assert receiver == []


# -- the page's requests -----------------------------------------------------------------
PAGE = ROOT / "docs" / "how-to" / "email-and-webhooks.md"
CURL = re.compile(r"curl -s -X POST https://reports\.example\.com(\S+) \\\n.*?-d '(\{.*?\})'", re.S)


@pytest.mark.django_db
def test_the_pages_requests_are_accepted_with_a_secret_to_verify(settings, auth_client, user):
    """The curl bodies of the page, posted as they are but for the receiver's host name
    (hooks.example.com does not resolve here: the test's is on loopback)."""
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
        "EMAIL_ALLOWED_DOMAINS": ["example.com"],
    }
    requests_on_page = CURL.findall(PAGE.read_text())
    assert [path for path, _ in requests_on_page] == [
        "/api/v1/reports/",
        "/api/v1/reports/schedules/",
    ]
    for path, body in requests_on_page:
        payload = json.loads(body)
        assert payload["webhook_url"] == "https://hooks.example.com/hooks/reports/"
        payload["webhook_url"] = "https://127.0.0.1/hooks/reports/"

        response = auth_client.post(path, payload, format="json")

        assert response.status_code == 201, response.content
        answer = response.json()
        assert answer["webhook_secret"].startswith("whsec_")
        assert answer["send_email"] is True
    report = Report.objects.get(user=user)
    assert report.webhook_url == "https://127.0.0.1/hooks/reports/"
    assert response.json()["email_recipients"] == ["manager@example.com", "team@example.com"]
