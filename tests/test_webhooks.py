"""Webhooks: URL and address checks, Standard Webhooks signatures, and delivery to a real
HTTP server on 127.0.0.1 (retries, permanent failures, redirects, timeouts, records).

No test sends traffic anywhere but loopback: public and private addresses
other than 127.0.0.1 only ever go through validation, or through a patched
resolver whose answer is refused before any connection.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import socket
import time

import pytest
from django.conf import settings as django_settings

from django_async_reports import delivery, services, signals, tasks
from django_async_reports.delivery import network, webhooks
from django_async_reports.exceptions import ReportConfigurationError
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution, WebhookDelivery
from tests.factories import ReportFactory, UserFactory
from tests.helpers import verify_signature
from tests.loopback_servers import Answer

pytestmark = pytest.mark.django_db

Delivery = ScheduleExecution.Delivery
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


# -- helpers -------------------------------------------------------------------------
@pytest.fixture
def webhook_settings(settings):
    """Loopback allowed, fast retries; returns a function to change more keys."""

    def apply(**values):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **values}

    apply(
        WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"],
        WEBHOOK_ALLOWED_PORTS=None,  # the loopback receivers listen on random ports
        WEBHOOK_RETRY_BACKOFF=1,
        WEBHOOK_MAX_ATTEMPTS=4,
        WEBHOOK_TIMEOUT=2.0,
    )
    return apply


@pytest.fixture
def queued(monkeypatch):
    """deliver_webhook messages deliver() queued, instead of sending them to the broker."""
    sent = []

    def capture(args=None, kwargs=None, **options):
        sent.append((tuple(args), options))

    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", capture)
    return sent


def completed_report(user, **fields) -> Report:
    report = ReportFactory(user=user, parameters={"count": 2, "delay": 0.0, "text": ""}, **fields)
    claimed = services.claim_report(report.pk)
    assert claimed is not None
    services.generate(claimed)
    services.post_process(report.pk)
    report.refresh_from_db()
    return report


def scheduled(owner, url, *, report=None, secret=SECRET, **schedule_fields):
    schedule = ReportSchedule.objects.create(
        owner=owner,
        report_type="numbers",
        title="Daily numbers",
        frequency="daily",
        webhook_url=url,
        webhook_secret=secret,
        **schedule_fields,
    )
    report = report or completed_report(owner, title=schedule.title)
    execution = ScheduleExecution.objects.create(
        schedule=schedule,
        report=report,
        due_at=datetime.datetime(2025, 1, 6, 6, 0, tzinfo=datetime.timezone.utc),
    )
    return schedule, report, execution


def run_task(report, event="report.completed", message_id=None, attempt=1):
    """The real task, applied in-process; its retries run at once, one after the other."""
    message_id = message_id or webhooks.message_id_for(report, event)
    return tasks.deliver_webhook.apply(args=[str(report.pk), event, message_id, attempt])


def attempts(report):
    return list(
        WebhookDelivery.objects.filter(report=report)
        .order_by("attempt")
        .values_list("attempt", "status_code", "succeeded")
    )


def webhook_status(execution):
    execution.refresh_from_db()
    return execution.webhook_status


# -- URL and address checks (validation only: no traffic) -----------------------------
class TestValidation:
    @pytest.mark.parametrize(
        "url",
        [
            "https://hooks.example.com/report",
            "http://hooks.example.com:443/x?a=1",
            " https://h.io ",
        ],
    )
    def test_accepts_public_http_urls(self, url):
        assert network.validate_webhook_url(url, resolve=False) == url.strip()

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("ftp://example.com/hook", "Only http and https"),
            ("file:///etc/passwd", "Only http and https"),
            ("gopher://example.com/", "Only http and https"),
            ("https://user:secret@example.com/hook", "credentials"),
            ("https://token@example.com/hook", "credentials"),
            ("http:///hook", "no host"),
            ("http://10.0.0.1/hook", "not public"),
            ("http://192.168.1.10/hook", "not public"),
            ("http://172.16.0.1/hook", "not public"),
            ("http://100.64.0.1/hook", "not public"),  # shared address space (CGNAT)
            ("http://127.0.0.1/hook", "not public"),
            ("http://0.0.0.0/hook", "not public"),
            ("http://224.0.0.1/hook", "not public"),
            ("http://169.254.10.1/hook", "not public"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
            ("http://[::1]/hook", "not public"),
            ("http://[::]/hook", "not public"),
            ("http://[::ffff:127.0.0.1]/hook", "not public"),
            ("http://[::ffff:169.254.169.254]/hook", "metadata"),
            ("http://[fe80::1]/hook", "not public"),
            ("http://[fc00::1]/hook", "not public"),
            ("http://[2002:7f00:1::]/hook", "not public"),  # 6to4 for 127.0.0.1
            ("http://[64:ff9b::a00:1]/hook", "not public"),  # NAT64 for 10.0.0.1
            ("http://example.com:99999/hook", "not valid"),
            ("http://exa mple.com/hook", "whitespace"),
            ("", "Enter a webhook URL"),
            ("https://example.com/" + "a" * 500, "longer than 500"),
        ],
    )
    def test_refuses(self, url, message):
        with pytest.raises(ValueError, match=message):
            network.validate_webhook_url(url, resolve=False)

    @pytest.mark.parametrize(
        "url",
        ["http://localhost/hook", "http://2130706433/hook", "http://127.1/hook"],
    )
    def test_names_and_odd_forms_are_refused_on_their_resolved_address(self, url):
        # Resolved locally (hosts file, numeric forms): no DNS query leaves the machine.
        with pytest.raises(network.WebhookURLRefused, match="not public"):
            network.validate_webhook_url(url)

    def test_refusal_is_a_value_error_with_a_message(self):
        with pytest.raises(ValueError) as info:
            delivery.validate_webhook_url("http://10.0.0.1/")
        assert isinstance(info.value, delivery.WebhookURLRefused)
        assert str(info.value).startswith("The address 10.0.0.1 is not public")

    def test_allowed_networks_admit_loopback(self, webhook_settings):
        assert network.validate_webhook_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"
        with pytest.raises(ValueError):
            network.validate_webhook_url("http://10.0.0.1/hook")

    def test_allowed_networks_admit_ipv6_and_mapped_addresses(self, webhook_settings):
        webhook_settings(WEBHOOK_ALLOWED_NETWORKS=["::1/128", "10.0.0.0/8"])
        network.validate_webhook_url("http://[::1]:9/hook")
        network.validate_webhook_url("http://[::ffff:10.1.2.3]/hook")
        with pytest.raises(ValueError):
            network.validate_webhook_url("http://127.0.0.1/hook")

    def test_metadata_is_refused_even_inside_an_allowed_network(self, webhook_settings):
        webhook_settings(WEBHOOK_ALLOWED_NETWORKS=["169.254.0.0/16", "fd00::/8"])
        network.validate_webhook_url("http://169.254.10.1/hook")
        for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/"):
            with pytest.raises(ValueError, match="metadata"):
                network.validate_webhook_url(url)

    def test_an_invalid_allowed_network_is_a_configuration_error(self, webhook_settings):
        webhook_settings(WEBHOOK_ALLOWED_NETWORKS=["not-a-network"])
        with pytest.raises(ReportConfigurationError, match="not-a-network"):
            network.validate_webhook_url("http://127.0.0.1/hook")

    def test_every_resolved_address_must_be_public(self, monkeypatch):
        answers = {"hooks.example.com": ["93.184.216.34", "10.1.2.3"]}
        monkeypatch.setattr(network.socket, "getaddrinfo", fake_resolver(answers))
        with pytest.raises(ValueError, match=r"10\.1\.2\.3 is not public"):
            network.validate_webhook_url("https://hooks.example.com/hook")

    def test_unresolvable_host(self, monkeypatch):
        monkeypatch.setattr(network.socket, "getaddrinfo", fake_resolver({}))
        with pytest.raises(network.WebhookHostUnresolved, match="could not be resolved"):
            network.validate_webhook_url("https://nowhere.invalid/hook")

    def test_public_addresses(self):
        for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
            assert network.is_public_address(ipaddress.ip_address(address))


def fake_resolver(answers, *, once=False):
    """A getaddrinfo answering from ``answers`` (host -> addresses), and IP literals as such.

    With ``once`` a name is answered a single time: a second lookup fails.
    """

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = answers.pop(host) if once else answers[host]
        result = []
        for address in addresses:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result

    return getaddrinfo


# -- signatures ------------------------------------------------------------------------
class TestSignature:
    def test_standard_webhooks_reference_vector(self):
        # The example of the Standard Webhooks reference libraries.
        signature = webhooks.sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    def test_a_plain_secret_is_used_as_its_bytes(self):
        body = b'{"a":1}'
        expected = hmac.new(b"plain secret", b"msg_1.1700000000." + body, hashlib.sha256)
        assert webhooks.sign("plain secret", "msg_1", 1700000000, body) == (
            "v1," + base64.b64encode(expected.digest()).decode()
        )

    def test_ad_hoc_secrets_are_per_user_and_follow_the_setting(self, settings):
        alice, bob = UserFactory(username="a1"), UserFactory(username="b1")
        first = webhooks.webhook_secret_for_user(alice)
        assert first.startswith("whsec_") and len(base64.b64decode(first[6:])) == 32
        assert first == webhooks.webhook_secret_for_user(alice.pk)
        assert first != webhooks.webhook_secret_for_user(bob)
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "WEBHOOK_SECRET": "rotate-me"}
        assert webhooks.webhook_secret_for_user(alice) != first

    def test_message_id_is_stable_per_outcome(self, user):
        report = completed_report(user)
        first = webhooks.message_id_for(report, "report.completed")
        assert first == webhooks.message_id_for(report, "report.completed")
        assert first.startswith("msg_")
        assert first != webhooks.message_id_for(report, "report.failed")
        report.completed_at += datetime.timedelta(seconds=1)  # a retried report finishing again
        assert first != webhooks.message_id_for(report, "report.completed")


# -- delivery to a real HTTP server on loopback -----------------------------------------
class TestDelivery:
    def test_completed_scheduled_report_is_posted_signed(self, receiver, webhook_settings, user):
        schedule, report, execution = scheduled(user, receiver.url("/hooks/reports?x=1"))

        result = run_task(report)

        assert result.successful(), result.traceback
        assert result.result["outcome"] == "sent"
        [request] = receiver.received()
        assert (request.method, request.path) == ("POST", "/hooks/reports?x=1")
        assert request.headers["content-type"] == "application/json"
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
        assert request.headers["user-agent"].startswith("django-async-reports-webhooks/")
        assert request.headers["webhook-id"] == webhooks.message_id_for(report, "report.completed")
        verify_signature(SECRET, request.headers, request.body)
        payload = request.json()
        assert payload["type"] == "report.completed"
        assert payload["timestamp"] == report.completed_at.isoformat().replace("+00:00", "Z")
        assert payload["data"] == {
            "report_id": str(report.pk),
            "title": "Daily numbers",
            "report_type": "numbers",
            "status": "completed",
            "row_count": 2,
            "duration_seconds": report.duration_seconds,
            "file_size": report.result_data["file_size"],
            "checksum": report.result_data["checksum"],
            "download_url": f"/api/v1/reports/{report.pk}/download/",
            "error": None,
            "created_at": payload["data"]["created_at"],
            "completed_at": payload["timestamp"],
            "expires_at": report.expires_at.isoformat().replace("+00:00", "Z"),
            "schedule_id": str(schedule.pk),
            "execution_id": execution.pk,
            "due_at": "2025-01-06T06:00:00Z",
        }
        # Seconds from started_at to completed_at, as the report row says.
        assert payload["data"]["duration_seconds"] == pytest.approx(
            (report.completed_at - report.started_at).total_seconds(), abs=0.001
        )
        assert attempts(report) == [(1, 204, True)]
        record = WebhookDelivery.objects.get(report=report)
        assert record.execution == execution
        assert record.event == "report.completed"
        assert record.url == receiver.url("/hooks/reports?x=1")
        assert record.duration_ms is not None and record.error == ""
        assert webhook_status(execution) == Delivery.SENT

    def test_failed_ad_hoc_report_is_signed_with_the_requesters_secret(
        self, receiver, webhook_settings, user
    ):
        report = ReportFactory(
            user=user, status="processing", webhook_url=receiver.url(), send_email=False
        )
        report = services.fail_report(report.pk, "ValueError: bad input")
        receiver.clear()  # whatever the notification step did; the task is under test

        result = run_task(report, event="report.failed")

        assert result.result["outcome"] == "sent"
        [request] = receiver.received()
        verify_signature(webhooks.webhook_secret_for_user(user), request.headers, request.body)
        data = request.json()["data"]
        assert request.json()["type"] == "report.failed"
        assert (data["status"], data["error"], data["download_url"]) == (
            "failed",
            "ValueError: bad input",
            None,
        )
        assert data["schedule_id"] is None and data["execution_id"] is None

    def test_server_errors_are_retried_with_the_same_id_then_succeed(
        self, receiver, webhook_settings, user
    ):
        _schedule, report, execution = scheduled(user, receiver.url())
        receiver.script(500, Answer(503, body=b"busy"), 200)

        result = run_task(report)

        assert result.result == {
            "outcome": "sent",
            "attempt": 3,
            "status_code": 200,
            "error": "",
            "retry_in": None,
        }
        requests = receiver.received()
        assert len(requests) == 3
        assert len({r.headers["webhook-id"] for r in requests}) == 1
        assert len({r.body for r in requests}) == 1  # the same message each time
        for request in requests:
            verify_signature(SECRET, request.headers, request.body)
        assert attempts(report) == [(1, 500, False), (2, 503, False), (3, 200, True)]
        second = WebhookDelivery.objects.get(report=report, attempt=2)
        assert second.error == "HTTP 503 Service Unavailable: busy"
        assert webhook_status(execution) == Delivery.SENT

    def test_gives_up_after_max_attempts(self, receiver, webhook_settings, user):
        webhook_settings(WEBHOOK_MAX_ATTEMPTS=3)
        _schedule, report, execution = scheduled(user, receiver.url())
        receiver.default = Answer(500)

        result = run_task(report)

        assert result.result["outcome"] == "failed"
        assert len(receiver.received()) == 3
        assert attempts(report) == [(1, 500, False), (2, 500, False), (3, 500, False)]
        last = WebhookDelivery.objects.get(report=report, attempt=3)
        assert last.error.endswith("(gave up after 3 attempts)")
        assert webhook_status(execution) == Delivery.FAILED

    @pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
    def test_client_errors_fail_at_once(self, receiver, webhook_settings, user, status):
        _schedule, report, execution = scheduled(user, receiver.url())
        receiver.script(Answer(status, body=b"no such hook"))

        result = run_task(report)

        assert result.result["outcome"] == "failed"
        assert len(receiver.received()) == 1
        assert attempts(report) == [(1, status, False)]
        assert webhook_status(execution) == Delivery.FAILED

    @pytest.mark.parametrize("status", [408, 429])
    def test_timeout_and_rate_limit_answers_are_retried(
        self, receiver, webhook_settings, user, status
    ):
        _schedule, report, _execution = scheduled(user, receiver.url())
        receiver.script(status)
        result = run_task(report)
        assert result.result["outcome"] == "sent"
        assert attempts(report) == [(1, status, False), (2, 204, True)]

    def test_redirects_are_not_followed(self, receiver, webhook_settings, user):
        _schedule, report, execution = scheduled(user, receiver.url("/old"))
        receiver.script(Answer(302, headers={"Location": receiver.url("/new")}))

        result = run_task(report)

        assert result.result["outcome"] == "failed"
        assert [(r.method, r.path) for r in receiver.received()] == [("POST", "/old")]
        record = WebhookDelivery.objects.get(report=report)
        assert record.status_code == 302
        assert "redirects are not followed" in record.error
        assert webhook_status(execution) == Delivery.FAILED

    def test_a_slow_server_times_out_and_is_retried(self, receiver, webhook_settings, user):
        webhook_settings(WEBHOOK_TIMEOUT=0.5)
        _schedule, report, _execution = scheduled(user, receiver.url())
        receiver.script(Answer(200, delay=2.0))

        started = time.monotonic()
        outcome = webhooks.attempt_delivery(
            report.pk, "report.completed", webhooks.message_id_for(report, "report.completed"), 1
        )

        assert time.monotonic() - started < 1.5
        assert (outcome.outcome, outcome.status_code, outcome.retry_in) == ("retry", None, 1.0)
        assert outcome.error.startswith("Timeout")
        record = WebhookDelivery.objects.get(report=report)
        assert record.status_code is None and record.error.startswith("Timeout")

    def test_connection_refused_is_retried(self, webhook_settings, user):
        from tests.loopback_servers import free_port

        _schedule, report, _execution = scheduled(user, f"http://127.0.0.1:{free_port()}/hook")
        outcome = webhooks.attempt_delivery(report.pk, "report.completed", "msg_x", 1)
        assert outcome.outcome == "retry"
        assert "ConnectionRefusedError" in outcome.error

    def test_backoff_doubles_and_honours_retry_after(self, receiver, webhook_settings, user):
        webhook_settings(WEBHOOK_RETRY_BACKOFF=10, WEBHOOK_MAX_ATTEMPTS=5)
        assert [webhooks.retry_countdown(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
        _schedule, report, _execution = scheduled(user, receiver.url())
        receiver.script(500, 500, Answer(429, headers={"Retry-After": "120"}))
        message_id = webhooks.message_id_for(report, "report.completed")
        outcomes = [
            webhooks.attempt_delivery(report.pk, "report.completed", message_id, n)
            for n in (1, 2, 3)
        ]
        assert [o.retry_in for o in outcomes] == [10, 20, 120]

    def test_retries_wait_no_longer_than_consumer_timeout_allows(
        self, receiver, webhook_settings, user
    ):
        """The worker holds a delayed attempt unacknowledged: it must run before the
        broker's consumer_timeout closes the channel (hard limit and margin included)."""
        # Ceiling: 1800 - 360 (the task's hard limit) - 60 (margin) = 1380 s.
        webhook_settings(WEBHOOK_RETRY_BACKOFF=600, WEBHOOK_MAX_ATTEMPTS=5)
        assert [webhooks.retry_countdown(n) for n in (1, 2, 3)] == [600, 1200, 1380]
        _schedule, report, _execution = scheduled(user, receiver.url())
        receiver.script(Answer(503, headers={"Retry-After": "3600"}))
        message_id = webhooks.message_id_for(report, "report.completed")
        outcome = webhooks.attempt_delivery(report.pk, "report.completed", message_id, 1)
        assert (outcome.outcome, outcome.retry_in) == ("retry", 1380)

        # A shorter task limit leaves more room; no consumer_timeout, only MAX_RETRY_AFTER.
        webhook_settings(TASK_SOFT_TIME_LIMIT=60, TASK_TIME_LIMIT=120)
        assert webhooks.retry_countdown(3) == 1620
        webhook_settings(CONSUMER_TIMEOUT=None)
        assert webhooks.retry_countdown(3) == 2400
        receiver.script(Answer(503, headers={"Retry-After": "7200"}))
        outcome = webhooks.attempt_delivery(report.pk, "report.completed", message_id, 2)
        assert outcome.retry_in == webhooks.MAX_RETRY_AFTER

    def test_loopback_is_refused_at_send_time_unless_allowed(self, receiver, user, settings):
        # Any port: the receiver's is random, and the address is what is refused here.
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "WEBHOOK_ALLOWED_PORTS": None}
        _schedule, report, execution = scheduled(user, receiver.url())

        result = run_task(report)

        assert result.result["outcome"] == "failed"
        assert receiver.received() == []
        record = WebhookDelivery.objects.get(report=report)
        assert record.error.startswith("Refused: The address 127.0.0.1 is not public")
        assert webhook_status(execution) == Delivery.FAILED

    def test_a_changed_dns_answer_is_checked_again_at_send_time(
        self, receiver, user, monkeypatch, settings
    ):
        """DNS rebinding: public when saved, loopback when sent. Nothing is sent."""
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "WEBHOOK_ALLOWED_PORTS": None}
        url = f"http://hooks.example.com:{receiver.port}/hook"
        answers = {"hooks.example.com": ["93.184.216.34"]}
        monkeypatch.setattr(network.socket, "getaddrinfo", fake_resolver(answers))
        assert network.validate_webhook_url(url) == url  # resolves only: no connection
        _schedule, report, _execution = scheduled(user, url)
        answers["hooks.example.com"] = ["127.0.0.1"]

        result = run_task(report)

        assert result.result["outcome"] == "failed"
        assert receiver.received() == []
        assert "127.0.0.1 is not public" in WebhookDelivery.objects.get(report=report).error

    def test_connects_to_the_checked_address_with_the_hosts_name(
        self, receiver, webhook_settings, user, monkeypatch
    ):
        # Answered once: the connection must go to that answer without a second lookup.
        resolver = fake_resolver({"hooks.example.com": ["127.0.0.1"]}, once=True)
        monkeypatch.setattr(network.socket, "getaddrinfo", resolver)
        _schedule, report, _execution = scheduled(
            user, f"http://hooks.example.com:{receiver.port}/hook"
        )
        assert run_task(report).result["outcome"] == "sent"
        [request] = receiver.received()
        assert request.headers["host"] == f"hooks.example.com:{receiver.port}"

    def test_a_second_copy_of_a_message_is_not_sent(self, receiver, webhook_settings, user):
        _schedule, report, _execution = scheduled(user, receiver.url())
        message_id = webhooks.message_id_for(report, "report.completed")
        assert run_task(report, message_id=message_id).result["outcome"] == "sent"
        second = run_task(report, message_id=message_id)  # queued twice by a retried step
        assert second.result["outcome"] == "skipped"
        assert len(receiver.received()) == 1

    def test_a_redelivered_message_takes_over_an_attempt_without_outcome(
        self, receiver, webhook_settings, user
    ):
        _schedule, report, execution = scheduled(user, receiver.url())
        message_id = webhooks.message_id_for(report, "report.completed")
        WebhookDelivery.objects.create(
            report=report,
            execution=execution,
            event="report.completed",
            url=receiver.url(),
            message_id=message_id,
            attempt=1,
        )  # its worker died while sending
        not_redelivered = webhooks.attempt_delivery(report.pk, "report.completed", message_id, 1)
        assert not_redelivered.outcome == "skipped"
        outcome = webhooks.attempt_delivery(
            report.pk, "report.completed", message_id, 1, redelivered=True
        )
        assert outcome.outcome == "sent"
        assert attempts(report) == [(1, 204, True)]

    def test_a_removed_webhook_url_is_skipped(self, receiver, webhook_settings, user):
        schedule, report, execution = scheduled(user, receiver.url())
        ScheduleExecution.objects.filter(pk=execution.pk).update(webhook_status=Delivery.SENDING)
        ReportSchedule.objects.filter(pk=schedule.pk).update(webhook_url="")
        assert run_task(report).result["outcome"] == "skipped"
        assert receiver.received() == []
        assert webhook_status(execution) == Delivery.SKIPPED


# -- deliver() queues the task ---------------------------------------------------------
class TestDeliverQueues:
    def test_once_per_execution_on_the_reports_queue(
        self, webhook_settings, user, queued, django_capture_on_commit_callbacks
    ):
        _schedule, report, execution = scheduled(user, "http://127.0.0.1:9/hook")
        report.priority = "urgent"
        with django_capture_on_commit_callbacks(execute=True):
            delivery.deliver(report)
            delivery.deliver(report)  # a retried notification step
        assert len(queued) == 1
        args, options = queued[0]
        assert args == (
            str(report.pk),
            "report.completed",
            webhooks.message_id_for(report, "report.completed"),
            1,
        )
        assert options["queue"] == django_settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"]
        assert webhook_status(execution) == Delivery.SENDING

    def test_a_broker_error_gives_the_claim_back(
        self, webhook_settings, user, monkeypatch, django_capture_on_commit_callbacks
    ):
        def refuse(*args, **kwargs):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr(tasks.deliver_webhook, "apply_async", refuse)
        _schedule, report, execution = scheduled(user, "http://127.0.0.1:9/hook")
        with (
            pytest.raises(ConnectionRefusedError),
            django_capture_on_commit_callbacks(execute=True),
        ):
            delivery.deliver(report)
        assert webhook_status(execution) == Delivery.PENDING

    def test_ad_hoc_reports_with_a_url(
        self, webhook_settings, user, queued, django_capture_on_commit_callbacks
    ):
        with_url = completed_report(user, webhook_url="http://127.0.0.1:9/hook")
        without = completed_report(user)
        cancelled = ReportFactory(user=user, webhook_url="http://127.0.0.1:9/hook")
        services.cancel_report(cancelled)
        with django_capture_on_commit_callbacks(execute=True):
            for report in (with_url, without, cancelled):
                delivery.deliver(report)
        assert [(args[0], args[1]) for args, _options in queued] == [
            (str(with_url.pk), "report.completed"),
            (str(cancelled.pk), "report.cancelled"),
        ]

    def test_skip_if_empty_queues_nothing(
        self, webhook_settings, user, queued, django_capture_on_commit_callbacks
    ):
        report = ReportFactory(user=user, status="completed", result_data={"row_count": 0})
        _schedule, _report, execution = scheduled(
            user, "http://127.0.0.1:9/hook", report=report, skip_if_empty=True
        )
        with django_capture_on_commit_callbacks(execute=True):
            delivery.deliver(report)
        assert queued == []
        assert webhook_status(execution) == Delivery.SKIPPED

    def test_active_reports_deliver_nothing(self, user, queued):
        report = ReportFactory(user=user, webhook_url="http://127.0.0.1:9/hook", send_email=True)
        delivery.deliver(report)
        assert queued == []


# -- cancellation: services.cancel_report delivers the webhook, once committed ----------
class TestCancellation:
    def pending_scheduled(self, user, url, **schedule_fields):
        report = ReportFactory(user=user, title="Daily numbers", send_email=True)
        _schedule, report, execution = scheduled(user, url, report=report, **schedule_fields)
        ScheduleExecution.objects.filter(pk=execution.pk).update(
            status=ScheduleExecution.Status.RUNNING,
            email_status=Delivery.PENDING,
            webhook_status=Delivery.PENDING,
        )
        return report, execution

    def test_scheduled_report_posts_report_cancelled_and_mails_nobody(
        self,
        webhook_settings,
        user,
        queued,
        mailoutbox,
        django_capture_on_commit_callbacks,
        captured_dispatches,
    ):
        report, execution = self.pending_scheduled(
            user, "http://127.0.0.1:9/hook", send_email=True, email_recipients=["a@example.com"]
        )
        signalled = []
        for signal in (signals.report_cancelled, signals.report_failed, signals.report_completed):
            signal.connect(
                lambda signal, **kw: signalled.append(signal), weak=False, dispatch_uid="t"
            )
        try:
            with django_capture_on_commit_callbacks(execute=True):
                services.cancel_report(report)
                # The execution records the outcome at once...
                execution.refresh_from_db()
                assert (execution.status, execution.error) == ("failed", "Cancelled")
                assert execution.finished_at is not None
                assert captured_dispatches.steps == []  # ...the notification, the commit.
            assert [step for _r, step, _c in captured_dispatches.steps] == ["notify"]
            # The notification step, as a worker runs it.
            with django_capture_on_commit_callbacks(execute=True):
                assert services.notify_report(report.pk) is True
        finally:
            for signal in (
                signals.report_cancelled,
                signals.report_failed,
                signals.report_completed,
            ):
                signal.disconnect(dispatch_uid="t")

        [(args, _options)] = queued
        assert args == (
            str(report.pk),
            "report.cancelled",
            webhooks.message_id_for(report, "report.cancelled"),
            1,
        )
        execution.refresh_from_db()
        assert (execution.webhook_status, execution.email_status) == (
            Delivery.SENDING,
            Delivery.SKIPPED,
        )
        assert mailoutbox == []
        assert signalled == [signals.report_cancelled]
        report.refresh_from_db()
        assert (report.notified_at is not None, report.next_step) == (True, "")
        # The same step again (redelivered, or sent by the sweeper) adds nothing.
        with django_capture_on_commit_callbacks(execute=True):
            assert services.notify_report(report.pk) is False
        assert len(queued) == 1

    def test_ad_hoc_report_with_a_url(
        self,
        webhook_settings,
        user,
        queued,
        mailoutbox,
        django_capture_on_commit_callbacks,
        captured_dispatches,
    ):
        report = ReportFactory(
            user=user, status="processing", webhook_url="http://127.0.0.1:9/hook", send_email=True
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.cancel_report(report)
        with django_capture_on_commit_callbacks(execute=True):
            services.notify_report(report.pk)
        assert [(args[0], args[1]) for args, _options in queued] == [
            (str(report.pk), "report.cancelled")
        ]
        assert mailoutbox == []

    def test_without_a_url_nothing_is_queued(
        self, user, queued, django_capture_on_commit_callbacks
    ):
        report = ReportFactory(user=user)
        with django_capture_on_commit_callbacks(execute=True):
            services.cancel_report(report)
        assert queued == []
        report.refresh_from_db()
        assert report.status == "cancelled"

    @pytest.mark.django_db(transaction=True)
    def test_a_refused_webhook_never_fails_the_cancel_and_is_delivered_later(
        self, webhook_settings, user, monkeypatch, caplog
    ):
        """Committed for real (autocommit), as the API and the admin cancel."""
        report, execution = self.pending_scheduled(user, "http://127.0.0.1:9/hook")

        def refuse(*args, **kwargs):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr("celery.app.task.Task.apply_async", refuse)
        cancelled = services.cancel_report(report)
        assert cancelled.status == "cancelled"
        assert "Could not queue the notify step" in caplog.text
        report.refresh_from_db()
        assert (report.notified_at, report.next_step) == (None, "notify")  # the sweeper's
        with pytest.raises(ConnectionRefusedError):
            services.notify_report(report.pk)  # the webhook's publish refused too
        report.refresh_from_db()
        assert report.notified_at is None  # given back
        assert webhook_status(execution) == Delivery.PENDING
        monkeypatch.undo()

        sent = []
        monkeypatch.setattr(
            tasks.deliver_webhook, "apply_async", lambda args=None, **kw: sent.append(args)
        )
        assert services.notify_report(report.pk) is True  # the notification step
        assert [args[1] for args in sent] == ["report.cancelled"]
        assert webhook_status(execution) == Delivery.SENDING

    def test_the_cancellation_is_posted_signed(self, receiver, webhook_settings, user):
        report, execution = self.pending_scheduled(user, receiver.url("/cancelled"))
        services.cancel_report(report)
        report.refresh_from_db()

        result = run_task(report, event="report.cancelled")

        assert result.result["outcome"] == "sent"
        [request] = receiver.received()
        verify_signature(SECRET, request.headers, request.body)
        payload = request.json()
        assert payload["type"] == "report.cancelled"
        assert payload["data"]["status"] == "cancelled"
        assert payload["data"]["download_url"] is None
        assert payload["data"]["execution_id"] == execution.pk
        assert webhook_status(execution) == Delivery.SENT
