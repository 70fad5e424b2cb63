"""The web process killed after COMMIT and before the publish: the report is not lost.

Before: the report stayed ``pending`` with no message, forever, and identical
requests joined it for an hour. A real ``runserver`` process of the test
project, with the test-only failpoint (``tests/testapp/failpoints.py``),
SIGKILLs itself in that window; the row, which recorded its generation as
its next step, is sent by the sweeper and a real worker runs it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from django_async_reports.models import Report
from tests.e2e.conftest import Api
from tests.faults.conftest import WORKER_SETTINGS
from tests.faults.services import wait_port
from tests.worker import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web_process(port: int, log_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "ASYNC_REPORTS_TEST_DB_NAME": connection.settings_dict["NAME"],
        "ASYNC_REPORTS_TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ASYNC_REPORTS_TEST_FAILPOINT": "kill-after-commit",
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps(WORKER_SETTINGS),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"]
    log = open(log_path, "wb")  # noqa: SIM115  (the process's own log)
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def test_a_web_process_killed_after_commit_loses_no_report(
    worker, alice, notified, ledger, tmp_path, settings
):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "REUSE_WINDOW_SECONDS": 3600}
    port = free_port()
    web = start_web_process(port, tmp_path / "web.log")
    try:
        wait_port("127.0.0.1", port, is_open=True, timeout=60)
        client = Api(f"http://127.0.0.1:{port}", alice.session.headers["Authorization"][7:])
        with pytest.raises(requests.ConnectionError):  # it died answering
            client.post(json={"report_type": "numbers", "parameters": {"count": 6}, **notified})
        assert web.wait(timeout=10) == -signal.SIGKILL
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait(timeout=10)

    # Committed, and its generation recorded as the step still to send.
    [report] = Report.objects.filter(user=alice.user)
    assert (report.status, report.next_step) == ("pending", "generate")
    # Within a publish's grace an identical request joins it (its publish may be
    # under way): it runs once swept, within the grace and a sweep interval.
    # (A request asking for its own e-mail or webhook never joins: this one asks for none.)
    twin = alice.post(json={"report_type": "numbers", "parameters": {"count": 6}}).json()
    assert (twin["outcome"], twin["id"]) == ("joined", str(report.pk))

    # The sweep beat runs every SWEEP_INTERVAL; here, at once, as if that time had passed.
    Report.objects.filter(pk=report.pk).update(next_step_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_reports")

    reports = ledger.check([str(report.pk)], user=alice.user, timeout=90)
    assert reports[str(report.pk)].status == "completed"
    assert reports[str(report.pk)].result_data["row_count"] == 6
