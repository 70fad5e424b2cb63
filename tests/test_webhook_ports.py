"""WEBHOOK_ALLOWED_PORTS: the ports webhook URLs may use, when saved and at every send."""

from __future__ import annotations

import pytest

from django_async_reports.conf import DEFAULTS
from django_async_reports.delivery import network, webhooks
from django_async_reports.models import WebhookDelivery
from tests.factories import ReportFactory
from tests.helpers import set_reports

pytestmark = pytest.mark.django_db

SCHEDULES_URL = "/api/v1/reports/schedules/"
REPORTS_URL = "/api/v1/reports/"


def test_default_allows_80_and_443_only():
    assert DEFAULTS["WEBHOOK_ALLOWED_PORTS"] == [80, 443]
    assert network.validate_webhook_url("https://93.184.215.14/hook", resolve=False)
    assert network.validate_webhook_url("http://93.184.215.14:80/hook", resolve=False)
    assert network.validate_webhook_url("https://93.184.215.14:443/hook", resolve=False)
    for url in ("https://93.184.215.14:8443/hook", "http://93.184.215.14:22/"):
        with pytest.raises(network.WebhookURLRefused, match="may only use the port"):
            network.validate_webhook_url(url, resolve=False)


def test_override_and_off(settings):
    set_reports(settings, WEBHOOK_ALLOWED_PORTS=[8443])
    assert network.validate_webhook_url("https://93.184.215.14:8443/h", resolve=False)
    with pytest.raises(network.WebhookURLRefused, match="port\\(s\\) 8443; this one uses port 443"):
        network.validate_webhook_url("https://93.184.215.14/h", resolve=False)
    set_reports(settings, WEBHOOK_ALLOWED_PORTS=None)
    assert network.validate_webhook_url("http://93.184.215.14:6379/", resolve=False)


def test_the_port_is_checked_before_the_host_is_resolved(monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError("resolved a URL whose port is refused")

    monkeypatch.setattr(network.socket, "getaddrinfo", no_dns)
    with pytest.raises(network.WebhookURLRefused, match="port"):
        network.validate_webhook_url("http://hooks.example.com:25/")


def test_reports_api_answers_400_on_the_field(auth_client):
    response = auth_client.post(
        REPORTS_URL,
        {"report_type": "numbers", "webhook_url": "https://93.184.215.14:9200/hook"},
        format="json",
    )
    assert response.status_code == 400
    assert "port 9200" in response.json()["webhook_url"][0]


def test_schedules_api_answers_400_on_the_field(auth_client):
    payload = {
        "report_type": "numbers",
        "frequency": "daily",
        "parameters": {"count": 1},
        "webhook_url": "https://93.184.215.14:8080/hook",
    }
    response = auth_client.post(SCHEDULES_URL, payload, format="json")
    assert response.status_code == 400
    assert "port 8080" in response.json()["webhook_url"][0]


def test_checked_again_at_send_time(user, settings, receiver):
    """A URL saved while its port was allowed is refused once it no longer is."""
    set_reports(settings, WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOWED_PORTS=None)
    report = ReportFactory(user=user, status="completed", webhook_url=receiver.url())
    set_reports(settings, WEBHOOK_ALLOWED_PORTS=[443])

    outcome = webhooks.attempt_delivery(report.pk, "report.completed", "msg_ports", 1)

    assert outcome.outcome == "failed"
    assert receiver.received() == []
    record = WebhookDelivery.objects.get(report=report)
    assert record.error.startswith("Refused: Webhook URLs may only use the port(s) 443")


@pytest.mark.parametrize(
    ("value", "check_id"),
    [
        ("443", "E032"),
        ([0], "E032"),
        ([70000], "E032"),
        ([True], "E032"),
        (["443"], "E032"),
        ([], "W011"),
    ],
)
def test_system_checks(settings, value, check_id):
    from django_async_reports.security_checks import check_security_settings as check_settings

    set_reports(settings, WEBHOOK_ALLOWED_PORTS=value)
    assert f"django_async_reports.{check_id}" in {m.id for m in check_settings()}


@pytest.mark.parametrize("value", [None, [443], [80, 443, 8443]])
def test_valid_values_pass_the_checks(settings, value):
    from django_async_reports.security_checks import check_security_settings as check_settings

    set_reports(settings, WEBHOOK_ALLOWED_PORTS=value)
    ids = {m.id for m in check_settings()}
    assert not {"django_async_reports.E032", "django_async_reports.W011"} & ids
