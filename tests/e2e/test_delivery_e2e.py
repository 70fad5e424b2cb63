"""Delivery through the real chain on a real worker: e-mail to aiosmtpd, webhooks to an HTTP
server, both on 127.0.0.1.

The worker of this module sends mail with Django's SMTP backend to the test's
aiosmtpd server and may reach loopback webhooks (``WEBHOOK_ALLOWED_NETWORKS``),
with a one-second retry backoff. Scheduled runs are set up as rows (schedule,
report, execution) and dispatched in one transaction, as the scheduler does.
"""

from __future__ import annotations

import base64
import csv
import datetime
import io
import itertools
import json
import time

import pytest
from django.db import transaction
from django.utils import timezone

from django_async_reports import schedules, services
from django_async_reports.exceptions import SERVICE_UNREACHABLE
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution, WebhookDelivery
from django_async_reports.routing import ensure_declared, route_for_priority
from django_async_reports.tasks import tick_schedules
from tests.e2e.conftest import wait_for
from tests.factories import UserFactory
from tests.helpers import verify_signature
from tests.loopback_servers import attachments, text_body

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Delivery = ScheduleExecution.Delivery
SECRET = "whsec_" + base64.b64encode(b"e2e-secret-e2e-secret-e2e-secret").decode()
WORKER_SETTINGS = {
    "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
    "WEBHOOK_ALLOWED_PORTS": None,  # loopback receivers on random ports
    "WEBHOOK_RETRY_BACKOFF": 1,
    "WEBHOOK_MAX_ATTEMPTS": 4,
    "WEBHOOK_TIMEOUT": 3,
}


@pytest.fixture(scope="module")
def delivery_workers(workers, smtp_server, django_db_blocker):
    """The e2e worker manager, its workers started with SMTP and webhook settings of ours."""
    saved = workers.env
    workers.env = {
        **saved,
        **smtp_server.worker_env(),
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(WORKER_SETTINGS),
    }
    try:
        yield workers
    finally:
        workers.env = saved
        with django_db_blocker.unblock():
            workers.stop()  # the next module's worker starts with the usual settings


@pytest.fixture
def smtp(smtp_server):
    """The aiosmtpd server, empty (the worker, not this process, is pointed at it)."""
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def delivery_worker(delivery_workers, django_db_blocker):
    with django_db_blocker.unblock():
        return delivery_workers.use("delivery", concurrency=2)


def initial_status(wanted) -> str:
    return Delivery.PENDING if wanted else Delivery.NOT_REQUESTED


def start_scheduled_run(owner, *, report_type="numbers", parameters=None, **schedule_fields):
    """A schedule, its report and execution committed together, then the chain dispatched."""
    with transaction.atomic():
        schedule = ReportSchedule.objects.create(
            owner=owner,
            report_type=report_type,
            title="Weekly numbers",
            frequency="weekly",
            weekday=0,
            timezone="UTC",
            **schedule_fields,
        )
        report = services.request_report(
            user=owner, report_type=report_type, parameters=parameters or {}, title=schedule.title
        )
        execution = ScheduleExecution.objects.create(
            schedule=schedule,
            report=report,
            due_at=datetime.datetime(2025, 3, 3, 8, 0, tzinfo=datetime.timezone.utc),
            trigger=ScheduleExecution.Trigger.MANUAL,
            # As the scheduler starts them: channels to deliver to are pending.
            email_status=initial_status(schedule.send_email),
            webhook_status=initial_status(schedule.webhook_url),
        )
    return schedule, report, execution


def due_daily_schedule(owner, receiver, **row_changes) -> ReportSchedule:
    """A daily numbers schedule, e-mailed and posted to ``receiver``, due a minute ago.

    The webhook URL and ``row_changes`` are set on the row: the API would refuse a
    loopback address.
    """
    schedule = schedules.create_schedule(
        owner=owner,
        report_type="numbers",
        title="Daily numbers",
        frequency="daily",
        send_email=True,
        email_recipients=["manager@example.com"],
    )
    ReportSchedule.objects.filter(pk=schedule.pk).update(
        webhook_url=receiver.url(),
        webhook_secret=SECRET,
        next_run_at=timezone.now() - datetime.timedelta(minutes=1),
        **row_changes,
    )
    return schedule


def tick_on_the_worker() -> dict[str, int]:
    """Run the schedules' tick on the worker, as beat sends it; its counts."""
    ensure_declared(tick_schedules.app)
    return tick_schedules.apply_async(**route_for_priority("normal")).get(timeout=30)


def the_signed_webhook(receiver, path: str | None = None) -> dict:
    """The payload of the one webhook ``receiver`` got (at ``path``), signed with SECRET."""
    [request] = receiver.received()
    if path is not None:
        assert request.path == path
    verify_signature(SECRET, request.headers, request.body)
    return request.json()


def wait_report(report, timeout=30.0) -> Report:
    return wait_for(
        lambda: Report.objects.filter(pk=report.pk, status__in=Report.FINISHED_STATUSES).first(),
        timeout=timeout,
        message=f"report {report.pk} to finish",
    )


def wait_execution(execution, **statuses) -> ScheduleExecution:
    def check():
        fresh = ScheduleExecution.objects.get(pk=execution.pk)
        return fresh if all(getattr(fresh, k) == v for k, v in statuses.items()) else None

    return wait_for(check, timeout=20, message=f"execution {execution.pk} with {statuses}")


def test_scheduled_run_mails_the_csv_and_posts_a_signed_webhook(
    delivery_worker, smtp, receiver, media_root
):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    _schedule, report, execution = start_scheduled_run(
        owner,
        parameters={"count": 4, "text": "hello"},
        send_email=True,
        email_recipients=["manager@example.com", "team@example.com"],
        webhook_url=receiver.url("/reports/done"),
        webhook_secret=SECRET,
    )

    done = wait_report(report)
    assert done.status == "completed", done.error_message
    execution = wait_execution(execution, email_status=Delivery.SENT, webhook_status=Delivery.SENT)

    # The e-mail, with the very file the download endpoint serves attached.
    [received] = smtp.received
    assert sorted(received.rcpt_tos) == ["manager@example.com", "team@example.com"]
    message = received.message
    assert message["Subject"] == "Weekly numbers (2025-03-03)"
    [(filename, content_type, content)] = attachments(message)
    assert content_type == "text/csv" and filename.endswith(".csv")
    assert content == (media_root / done.result_file.name).read_bytes()
    assert list(csv.reader(io.StringIO(content.decode()))) == [["n", "square", "text"]] + [
        [str(n), str(n * n), "hello"] for n in range(1, 5)
    ]
    assert f"/api/v1/reports/{report.pk}/download/" in text_body(message)

    # The webhook, signed with the schedule's secret.
    payload = the_signed_webhook(receiver, "/reports/done")
    assert payload["type"] == "report.completed"
    assert payload["data"]["report_id"] == str(report.pk)
    assert payload["data"]["row_count"] == 4
    done_row = Report.objects.get(pk=report.pk)
    assert payload["data"]["duration_seconds"] == done_row.duration_seconds
    assert payload["data"]["duration_seconds"] >= 0
    assert payload["data"]["checksum"] == done.result_data["checksum"]
    assert payload["data"]["execution_id"] == execution.pk
    [record] = WebhookDelivery.objects.filter(report=report)
    assert (record.attempt, record.status_code, record.succeeded) == (1, 204, True)

    # Nothing more turns up (a duplicate notification would show here).
    time.sleep(1.0)
    assert len(smtp.received) == 1 and len(receiver.received()) == 1


def test_webhook_retries_with_backoff_until_the_receiver_recovers(delivery_worker, smtp, receiver):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    receiver.script(500, 503, 200)
    _schedule, report, execution = start_scheduled_run(
        owner,
        parameters={"count": 1},
        webhook_url=receiver.url(),
        webhook_secret=SECRET,
    )

    assert wait_report(report).status == "completed"
    wait_execution(execution, webhook_status=Delivery.SENT)

    requests = receiver.received()
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for request in requests:
        verify_signature(SECRET, request.headers, request.body)
    # WEBHOOK_RETRY_BACKOFF is 1 second, doubled: about 1 s, then 2 s between attempts.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps
    assert list(
        WebhookDelivery.objects.filter(report=report)
        .order_by("attempt")
        .values_list("attempt", "status_code", "succeeded")
    ) == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert smtp.received == []  # the schedule sends no e-mail


def test_webhook_fails_for_good_on_a_client_error(delivery_worker, receiver):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    receiver.default.status = 400
    _schedule, report, execution = start_scheduled_run(
        owner, parameters={"count": 1}, webhook_url=receiver.url(), webhook_secret=SECRET
    )

    assert wait_report(report).status == "completed"
    wait_execution(execution, webhook_status=Delivery.FAILED)
    time.sleep(1.5)  # past the first backoff: no retry
    assert len(receiver.received()) == 1
    assert WebhookDelivery.objects.filter(report=report).count() == 1


def test_failed_scheduled_run_tells_the_owner_and_the_webhook(delivery_worker, smtp, receiver):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    _schedule, report, execution = start_scheduled_run(
        owner,
        report_type="broken",
        send_email=True,
        email_recipients=["manager@example.com"],
        webhook_url=receiver.url(),
        webhook_secret=SECRET,
    )

    done = wait_report(report)
    assert done.status == "failed"
    wait_execution(execution, email_status=Delivery.SENT, webhook_status=Delivery.SENT)

    [received] = smtp.received
    assert received.rcpt_tos == ["olivia@example.com"]  # the owner, not the recipients
    assert received.message["Subject"] == 'Scheduled report "Weekly numbers" failed'
    # In words, with a reference; the exception itself stays in the log and the admin.
    report.refresh_from_db()
    assert report.error_message.startswith(SERVICE_UNREACHABLE)
    assert f"Error: {report.error_message}" in text_body(received.message)
    assert "the data source is down" not in text_body(received.message)
    payload = the_signed_webhook(receiver)
    assert payload["type"] == "report.failed"
    assert payload["data"]["error"] == report.error_message


def test_skip_if_empty_delivers_nothing(delivery_worker, smtp, receiver):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    _schedule, report, execution = start_scheduled_run(
        owner,
        parameters={"count": 0},
        send_email=True,
        email_recipients=["manager@example.com"],
        webhook_url=receiver.url(),
        webhook_secret=SECRET,
        skip_if_empty=True,
    )

    assert wait_report(report).status == "completed"
    wait_execution(execution, email_status=Delivery.SKIPPED, webhook_status=Delivery.SKIPPED)
    time.sleep(1.0)
    assert smtp.received == [] and receiver.received() == []


def test_requester_gets_the_csv_of_an_ad_hoc_report(delivery_worker, smtp, alice):
    created = alice.create(
        report_type="numbers", title="Ad hoc", send_email=True, parameters={"count": 2}
    )

    done = alice.wait_finished(created["id"])

    assert done["status"] == "completed"
    wait_for(lambda: smtp.received, timeout=15, message="the requester's e-mail")
    [received] = smtp.received
    assert received.rcpt_tos == ["alice@example.com"]
    [(_name, _type, content)] = attachments(received.message)
    assert content == alice.get(f"{created['id']}/download/").content


def test_a_run_that_cannot_start_tells_the_owner_and_posts_no_webhook(
    delivery_worker, smtp, receiver
):
    """The tick on the worker: the report cannot even be requested (generator removed).

    No webhook goes out for a run without a report (webhook messages belong to
    a report): its webhook channel is recorded ``skipped``.
    """
    owner = UserFactory(username="olivia", email="olivia@example.com")
    schedule = due_daily_schedule(owner, receiver, report_type="retired")

    counts = tick_on_the_worker()
    assert counts["started"] == 0

    execution = wait_for(
        lambda: ScheduleExecution.objects.filter(schedule=schedule).first(),
        timeout=20,
        message="the execution",
    )
    assert execution.status == "failed" and execution.report is None
    assert execution.webhook_status == Delivery.SKIPPED
    execution = wait_execution(execution, email_status=Delivery.SENT)

    [received] = smtp.received
    assert received.rcpt_tos == ["olivia@example.com"]
    assert received.message["Subject"] == 'Scheduled report "Daily numbers" failed'
    body = text_body(received.message)
    assert "failed before its report could be created" in body
    assert "retired" in body  # the error names the missing report type
    time.sleep(1.0)
    assert receiver.received() == []
    assert len(smtp.received) == 1


def test_cancelling_a_scheduled_run_over_http_posts_report_cancelled(
    delivery_worker, smtp, receiver, alice
):
    _schedule, report, execution = start_scheduled_run(
        alice.user,
        parameters={"count": 200, "delay": 0.05},  # 10 s of rows
        send_email=True,
        email_recipients=["manager@example.com"],
        webhook_url=receiver.url("/cancelled"),
        webhook_secret=SECRET,
    )
    alice.wait_processing(str(report.pk), min_progress=1)

    response = alice.post(f"{report.pk}/cancel/")

    assert response.status_code == 200, response.text
    execution = wait_execution(execution, webhook_status=Delivery.SENT)
    assert (execution.status, execution.error) == ("failed", "Cancelled")
    assert execution.email_status == Delivery.SKIPPED
    payload = the_signed_webhook(receiver, "/cancelled")
    assert payload["type"] == "report.cancelled"
    assert payload["data"]["report_id"] == str(report.pk)
    assert payload["data"]["status"] == "cancelled"
    assert payload["data"]["execution_id"] == execution.pk
    # The chain's notification step, when the worker gets to it, adds nothing.
    wait_report(report)
    time.sleep(1.5)
    assert len(receiver.received()) == 1
    assert smtp.received == []


# -- what leaves the building ---------------------------------------------------------------
def test_a_database_error_reaches_users_in_words(delivery_worker, smtp, receiver, admin_client):
    """A generator's OperationalError names a host: users, mails and webhooks never see it."""
    from rest_framework.test import APIClient

    owner = UserFactory(username="olivia", email="olivia@example.com")
    _schedule, report, execution = start_scheduled_run(
        owner,
        report_type="db_down",
        webhook_url=receiver.url(),
        webhook_secret=SECRET,
    )

    done = wait_report(report, timeout=60)
    assert done.status == "failed"
    wait_execution(execution, email_status=Delivery.SENT, webhook_status=Delivery.SENT)

    assert done.error_message.startswith("The database could not be reached. Reference: ")
    api = APIClient()
    api.force_authenticate(owner)
    answer = api.get(f"/api/v1/reports/{report.pk}/")
    assert answer.status_code == 200
    assert answer.json()["error_message"] == done.error_message
    [received] = smtp.received
    body = text_body(received.message)
    assert f"Error: {done.error_message}" in body
    [request] = receiver.received()
    assert request.json()["data"]["error"] == done.error_message
    for seen in (answer.content.decode(), body, request.body.decode()):
        assert "10.1.2.3" not in seen and "5432" not in seen
    # The admin shows what happened.
    page = admin_client.get(f"/admin/django_async_reports/report/{report.pk}/change/")
    assert "could not connect to server at 10.1.2.3 port 5432" in page.content.decode()


def test_a_due_schedule_of_an_inactive_owner_is_not_run(delivery_worker, smtp, receiver):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    schedule = due_daily_schedule(owner, receiver)
    owner.is_active = False
    owner.save(update_fields=["is_active"])

    counts = tick_on_the_worker()

    assert counts == {"started": 0, "failed": 0, "skipped": 1}
    execution = ScheduleExecution.objects.get(schedule=schedule)
    assert execution.status == ScheduleExecution.Status.SKIPPED
    assert execution.note == "The owner's account is inactive: the schedule was disabled."
    schedule.refresh_from_db()
    assert schedule.enabled is False
    assert not Report.objects.filter(user=owner).exists()
    time.sleep(1)  # anything sent would have arrived
    assert smtp.received == []
    assert receiver.received() == []


def test_a_run_queued_before_the_deactivation_delivers_nothing(delivery_worker, smtp, receiver):
    owner = UserFactory(username="olivia", email="olivia@example.com")
    with transaction.atomic():
        _schedule, report, execution = start_scheduled_run(
            owner,
            send_email=True,
            email_recipients=["manager@example.com"],
            webhook_url=receiver.url(),
            webhook_secret=SECRET,
        )
        owner.is_active = False  # committed with the run, before the worker takes it
        owner.save(update_fields=["is_active"])

    assert wait_report(report).status == "completed"
    done = wait_execution(execution, email_status=Delivery.SKIPPED, webhook_status=Delivery.SKIPPED)
    assert done.note == "The owner's account is inactive: nothing was delivered."
    time.sleep(1)
    assert smtp.received == []
    assert receiver.received() == []
