"""Plain helpers shared by several test modules (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import hmac
import io
import subprocess
import sys
import time
from pathlib import Path

from django.contrib import admin
from django.contrib.messages import get_messages

from django_async_reports import schedules, services
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.factories import ReportFactory

#: The repository's top folder.
ROOT = Path(__file__).resolve().parent.parent
REPORTS_URL = "/api/v1/reports/"
#: The fields of the progress endpoint's answer.
PROGRESS_KEYS = {
    "id",
    "status",
    "progress",
    "message",
    "started_at",
    "completed_at",
    "updated_at",
    "rows",
    "total",
    "rows_per_second",
    "eta_seconds",
}
#: The recipients of the e-mailed schedules of make_email_schedule.
RECIPIENTS = ["manager@example.com", "team@example.com"]


# -- settings ----------------------------------------------------------------------------
def set_reports(settings, **values):
    """Override ASYNC_REPORTS keys for one test (reverted by the settings fixture)."""
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **values}


# -- reports -----------------------------------------------------------------------------
def detail(report, action=""):
    """The API URL of ``report``, or of one of its actions."""
    return f"{REPORTS_URL}{report.pk}/{action + '/' if action else ''}"


def run_report(report: Report, *, notify: bool = True) -> Report:
    """Run the chain's steps on ``report`` as the worker does; return it refreshed.

    With ``notify=False`` only the first two steps run (no notification, for the
    delivery tests, which deliver themselves), and post-processing must have
    completed the report.
    """
    claimed = services.claim_report(report.pk)
    assert claimed is not None
    services.generate(claimed)
    processed = services.post_process(report.pk)
    if notify:
        services.notify_report(report.pk)
    else:
        assert processed is not None
    report.refresh_from_db()
    return report


def numbers_report(user, count=3, **kwargs) -> Report:
    """A completed, not notified, "numbers" report of ``count`` rows."""
    params = {"count": count, "delay": 0.0, "text": "a&b"}
    return run_report(ReportFactory(user=user, parameters=params, **kwargs), notify=False)


def expected_rows(count):
    """The CSV rows of numbers_report(count=count)."""
    return [["n", "square", "text"]] + [[str(n), str(n * n), "a&b"] for n in range(1, count + 1)]


def csv_rows(content: bytes):
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


# -- schedules ---------------------------------------------------------------------------
def make_schedule(owner, **fields):
    """A daily "numbers" schedule created through the service."""
    values = {
        "report_type": "numbers",
        "title": "Numbers every day",
        "frequency": "daily",
        "parameters": {"count": 2, "delay": 0, "text": ""},
    }
    values.update(fields)
    return schedules.create_schedule(owner=owner, **values)


def make_email_schedule(owner, **fields) -> ReportSchedule:
    """A weekly schedule row mailing its reports to RECIPIENTS (created without the service)."""
    values = {
        "report_type": "numbers",
        "title": "Weekly numbers",
        "frequency": "weekly",
        "weekday": 0,
        "timezone": "Europe/Paris",
        "send_email": True,
        "email_recipients": RECIPIENTS,
        **fields,
    }
    return ReportSchedule.objects.create(owner=owner, **values)


def make_report_execution(schedule, report, **fields) -> ScheduleExecution:
    """A running execution of ``schedule`` that started ``report``."""
    values = {
        "due_at": datetime.datetime(2025, 3, 3, 7, 0, tzinfo=datetime.timezone.utc),
        "status": ScheduleExecution.Status.RUNNING,
        **fields,
    }
    return ScheduleExecution.objects.create(schedule=schedule, report=report, **values)


def scheduled_report(owner, *, count=3, schedule_fields=None, execution_fields=None):
    """An e-mailed schedule, its completed numbers report and its running execution."""
    schedule = make_email_schedule(owner, **(schedule_fields or {}))
    report = numbers_report(owner, count=count, title=schedule.title)
    execution = make_report_execution(schedule, report, **(execution_fields or {}))
    return schedule, report, execution


# -- admin -------------------------------------------------------------------------------
def run_action(client, changelist: str, action: str, *objects):
    """Post the admin ``action`` on ``objects`` from the ``changelist`` page."""
    return client.post(
        changelist,
        {"action": action, admin.helpers.ACTION_CHECKBOX_NAME: [str(o.pk) for o in objects]},
        follow=True,
    )


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


# -- webhooks ----------------------------------------------------------------------------
def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Check a request as a Standard Webhooks receiver would, without the package's code."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) < 60
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert expected in headers["webhook-signature"].split(" "), headers["webhook-signature"]


def fresh_python_output(code: str) -> list[str]:
    """The lines ``code`` prints in a new interpreter on the test settings, with nothing
    else in its environment (what an import does at start-up, free of this process's
    modules); it must succeed."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
