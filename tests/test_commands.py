"""The operators' commands (generate_report, reports, queues) on the real database.

Messages are captured (``captured_dispatches``); a report ``--wait`` follows is
run in process. The real worker and broker are in ``tests/e2e/test_commands_e2e.py``.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_async_reports import progress, services
from django_async_reports.management.commandline import parse_params
from django_async_reports.management.progress_bar import duration, render, snapshot
from django_async_reports.models import Report
from django_async_reports.services.outbox import WAITING_FOR_QUEUE
from tests.factories import ReportFactory, UserFactory
from tests.helpers import csv_rows, expected_rows, numbers_report, run_report, set_reports

pytestmark = pytest.mark.django_db

Status = Report.Status


def run(*args, **options):
    """``call_command``; (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def run_json(*args):
    out, _ = run(*args, "--json")
    return json.loads(out)


@pytest.fixture
def alice():
    return UserFactory(username="alice")


# -- generate_report -------------------------------------------------------------------
def test_generate_report_requests_through_the_service_layer(alice, captured_dispatches):
    out, _ = run(
        "generate_report",
        "--type=numbers",
        "--user=alice",
        "--param",
        "count=7",
        "--param",
        "text=hello",
        "--priority=high",
        "--title=From the shell",
        "--format=json",
    )
    report = Report.objects.get()
    assert out.strip() == f"Requested report {report.pk} (numbers, json) for alice."
    assert report.user == alice
    assert report.parameters == {"count": 7, "delay": 0.0, "text": "hello"}
    assert (report.priority, report.title, report.format) == ("high", "From the shell", "json")
    assert report.status == Status.PENDING
    assert report.next_step == "generate"


def test_generate_report_json_and_user_by_id(alice, captured_dispatches):
    data = run_json("generate_report", "--type=numbers", f"--user={alice.pk}", "--compress")
    report = Report.objects.get()
    assert data["id"] == str(report.pk)
    assert data["status"] == "pending"
    assert data["user"] == {"id": alice.pk, "username": "alice"}
    assert data["compress"] is True
    assert data["format"] == "csv"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type=nope", "--user=alice"], "Unknown report type 'nope'. Registered types:"),
        (["--type=numbers", "--user=nobody"], "No user with the username or id 'nobody'."),
        (["--type=numbers", "--user=alice", "--param", "count=-1"], "count: Ensure this value"),
        (
            ["--type=sales", "--user=alice", "--param", "start_date=2024-02-01"],
            "Invalid request: end_date: This field is required.",
        ),
        (["--type=numbers", "--user=alice", "--param", "count"], "--param takes key=value"),
        (["--type=numbers", "--user=alice", "--format=pdfx"], 'format: "pdfx" is not a format'),
        (["--type=numbers", "--user=alice", "--timeout=0"], "--timeout must be"),
    ],
)
def test_generate_report_errors(alice, captured_dispatches, args, message):
    with pytest.raises(CommandError) as caught:
        run("generate_report", *args)
    assert message in str(caught.value)
    assert not Report.objects.exists()


def test_generate_report_refusals_in_words(alice, captured_dispatches, settings):
    set_reports(settings, MAX_ACTIVE_REPORTS_PER_USER=1)
    run("generate_report", "--type=numbers", "--user=alice")
    with pytest.raises(CommandError, match="the most allowed at once"):
        run("generate_report", "--type=numbers", "--user=alice")
    assert Report.objects.count() == 1


def test_generate_report_exits_with_1_from_the_shell(alice, captured_dispatches):
    from django.core.management import ManagementUtility

    utility = ManagementUtility(["manage.py", "generate_report", "--type=nope", "--user=alice"])
    with pytest.raises(SystemExit) as caught:
        utility.execute()
    assert caught.value.code == 1


def test_parse_params_json_or_text():
    assert parse_params(["a=1", "b=x", 'c=["p", 2]', "d=", 'e="5"', "f=a=b", "g=true"]) == {
        "a": 1,
        "b": "x",
        "c": ["p", 2],
        "d": "",
        "e": "5",
        "f": "a=b",
        "g": True,
    }


def finish_on_first_sleep(monkeypatch):
    """Run the waited-for report in process the first time the command sleeps."""
    slept = []

    def sleep(seconds):
        if not slept:
            report = Report.objects.get()
            run_report(report, notify=False)
        slept.append(seconds)

    monkeypatch.setattr(
        "django_async_reports.management.commands.generate_report.time.sleep", sleep
    )
    return slept


def test_generate_report_wait_writes_the_file(alice, captured_dispatches, monkeypatch, tmp_path):
    slept = finish_on_first_sleep(monkeypatch)
    target = tmp_path / "numbers.csv"
    out, err = run(
        "generate_report",
        "--type=numbers",
        "--user=alice",
        "--param=count=5",
        "--param=text=a&b",
        f"--output={target}",
        "--interval=0.01",
    )
    report = Report.objects.get()
    assert report.status == Status.COMPLETED
    assert slept == [0.01]
    assert csv_rows(target.read_bytes()) == expected_rows(5)
    assert f"Report {report.pk} completed: 5 row(s). Written to {target}." in out
    # Not a terminal: one line per change of the bar, the last one complete.
    lines = err.strip().splitlines()
    assert lines[0].startswith("[") and lines[0].endswith("pending")
    assert lines[-1].startswith("[" + "#" * 30 + "] 100%")
    assert lines[-1].endswith("completed")
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_generate_report_wait_json_into_a_folder(alice, captured_dispatches, monkeypatch, tmp_path):
    finish_on_first_sleep(monkeypatch)
    out, err = run(
        "generate_report",
        "--type=numbers",
        "--user=alice",
        "--param=count=3",
        f"--output={tmp_path}",
        "--no-progress",
        "--json",
    )
    data = json.loads(out)  # stdout holds the JSON document only
    report = Report.objects.get()
    written = Path(data["output"])
    assert written.parent == tmp_path
    assert written.name == report.result_file.name.rsplit("/", 1)[-1]
    assert (data["status"], data["row_count"], data["progress"]) == ("completed", 3, 100)
    assert len(csv_rows(written.read_bytes())) == 4
    assert err == ""


def test_generate_report_wait_times_out(alice, captured_dispatches):
    with pytest.raises(CommandError, match=r"Timed out waiting for report .* it goes on"):
        run(
            "generate_report",
            "--type=numbers",
            "--user=alice",
            "--wait",
            "--timeout=0.2",
            "--interval=0.05",
        )
    assert Report.objects.get().status == Status.PENDING


def test_generate_report_wait_on_a_failed_report(alice, captured_dispatches, monkeypatch):
    def sleep(seconds):
        services.fail_report(Report.objects.get().pk, "It broke.")

    monkeypatch.setattr(
        "django_async_reports.management.commands.generate_report.time.sleep", sleep
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"failed: It broke\."):
        call_command(
            "generate_report",
            "--type=numbers",
            "--user=alice",
            "--wait",
            "--json",
            stdout=out,
            stderr=io.StringIO(),
        )
    assert json.loads(out.getvalue())["status"] == "failed"


# -- the progress bar ------------------------------------------------------------------
def processing(percent, message, seconds, **cached):
    """The bar's state of a report processing for ``seconds``, its cache holding ``cached``."""
    now = timezone.now()
    started_at = now - timedelta(seconds=seconds)
    return snapshot(
        status="processing",
        percent=percent,
        message=message,
        started_at=started_at,
        now=now,
        cached=cached or None,
    )


def test_bar_from_the_cache_fields():
    cache = {"rows": 4100, "total": 10_000, "rows_per_second": 1000.0, "eta_seconds": 5.9}
    state = processing(40, "Processed 4,000 of 10,000 rows", 4, **cache)
    assert (state.rows, state.total, state.rate, state.eta) == (4100, 10_000, 1000.0, 5.9)
    assert render(state, width=10) == (
        "[####......]  40%  4,100/10,000 rows  1,000 rows/s  0:06 left  processing"
    )


def test_bar_computed_from_the_row_without_cache_fields():
    state = processing(25, "Processed 2,500 of 10,000 rows", 10, progress=25)
    assert (state.rows, state.total, state.rate) == (2500, 10_000, 250.0)
    assert state.eta == pytest.approx(30.0)
    unknown_total = processing(0, "Processed 300 rows", 3)
    assert (unknown_total.rows, unknown_total.total, unknown_total.eta) == (300, None, None)
    assert (
        render(unknown_total, width=4)
        == "[....]   0%  300 rows  100 rows/s  --:-- left  processing"
    )
    only_percent = processing(50, "Starting", 20)
    assert (only_percent.rows, only_percent.rate, only_percent.eta) == (None, None, 20.0)
    assert render(only_percent, width=2) == "[#.]  50%  -- rows/s  0:20 left  processing"


def test_duration():
    assert [duration(s) for s in (None, 0, 59.6, 75, 3700)] == [
        "--:--",
        "0:00",
        "1:00",
        "1:15",
        "1:01:40",
    ]


# -- reports list / show ---------------------------------------------------------------
def test_reports_list_filters(alice):
    bob = UserFactory(username="bob")
    failed = ReportFactory(user=alice, status=Status.FAILED, report_type="numbers")
    ReportFactory(user=alice, status=Status.PENDING, report_type="sales")
    theirs = ReportFactory(user=bob, status=Status.FAILED, report_type="numbers")

    assert {r["id"] for r in run_json("reports", "list")} == {
        str(r.pk) for r in Report.objects.all()
    }
    by_alice = run_json("reports", "list", "--user=alice", "--status=failed")
    assert [r["id"] for r in by_alice] == [str(failed.pk)]
    numbers = run_json("reports", "list", "--type=numbers", "--status=failed")
    assert {r["id"] for r in numbers} == {str(failed.pk), str(theirs.pk)}
    assert len(run_json("reports", "list", "--limit=1")) == 1
    out, _ = run("reports", "list", "--user", str(bob.pk))
    assert str(theirs.pk) in out and str(failed.pk) not in out
    assert out.strip().endswith("1 report(s).")


def test_reports_list_errors(alice):
    with pytest.raises(CommandError, match="No user"):
        run("reports", "list", "--user=nobody")
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        run("reports", "list", "--limit=0")
    with pytest.raises(CommandError, match="invalid choice"):
        run("reports", "list", "--status=lost")


def test_reports_show(alice):
    report = numbers_report(alice, count=4)
    data = run_json("reports", "show", str(report.pk))
    assert data["id"] == str(report.pk)
    assert data["status"] == "completed"
    assert data["row_count"] == 4
    assert data["file"] == report.result_file.name
    assert data["parameters"] == report.parameters
    assert "webhook_url" not in data
    out, _ = run("reports", "show", str(report.pk))
    assert "status:            completed" in out
    assert "user:              alice (id" in out
    assert f"parameters:        {json.dumps(report.parameters, sort_keys=True)}" in out


@pytest.mark.parametrize("action", ["show", "cancel", "retry", "requeue"])
def test_reports_unknown_id(action):
    with pytest.raises(CommandError, match="No report with the id"):
        run("reports", action, str(uuid.uuid4()))
    with pytest.raises(CommandError, match="is not a report id"):
        run("reports", action, "12")


# -- cancel / retry / requeue ----------------------------------------------------------
def test_reports_cancel(alice, captured_dispatches):
    report = ReportFactory(user=alice, status=Status.PROCESSING)
    data = run_json("reports", "cancel", str(report.pk))
    assert data["status"] == "cancelled"
    report.refresh_from_db()
    assert report.status == Status.CANCELLED
    with pytest.raises(CommandError, match="already cancelled and cannot be cancelled"):
        run("reports", "cancel", str(report.pk))


def test_reports_retry(alice, captured_dispatches):
    report = ReportFactory(user=alice, status=Status.FAILED, error_message="It broke.")
    old_task = report.celery_task_id
    out, _ = run("reports", "retry", str(report.pk))
    assert out.strip() == f"Queued again (retry): report {report.pk} is pending."
    report.refresh_from_db()
    assert (report.status, report.error_message, report.next_step) == ("pending", "", "generate")
    assert report.celery_task_id != old_task
    with pytest.raises(CommandError, match="Only failed or cancelled reports can be retried"):
        run("reports", "retry", str(report.pk))


def test_reports_requeue_sends_the_generation_again(
    alice, django_capture_on_commit_callbacks, captured_dispatches
):
    report = ReportFactory(user=alice, status=Status.PENDING, celery_task_id="lost-message")
    with django_capture_on_commit_callbacks(execute=True):
        data = run_json("reports", "requeue", str(report.pk))
    report.refresh_from_db()
    assert data["status"] == "pending"
    assert report.celery_task_id not in ("", "lost-message")
    assert report.progress_message == "Queued again by an operator"
    assert [(r.pk, step) for r, step, _ in captured_dispatches.steps] == [(report.pk, "generate")]
    assert captured_dispatches.steps[0][0].celery_task_id == report.celery_task_id
    assert report.next_step == ""  # the broker (captured) confirmed it
    assert progress.read_cache(report.pk)["message"] == "Queued again by an operator"


@pytest.mark.parametrize(
    ("status", "hint"),
    [(Status.PROCESSING, "this one is processing."), (Status.FAILED, "(retry it instead)")],
)
def test_reports_requeue_only_pending(alice, captured_dispatches, status, hint):
    report = ReportFactory(user=alice, status=status)
    with pytest.raises(CommandError, match="Only pending reports can be queued again") as caught:
        run("reports", "requeue", str(report.pk))
    assert hint in str(caught.value)
    assert captured_dispatches.steps == []


# -- stuck ------------------------------------------------------------------------------
def test_reports_stuck(alice, settings):
    set_reports(settings, STUCK_MARGIN=60)
    now = timezone.now()
    lost = ReportFactory(user=alice, status=Status.PROCESSING)
    alive = ReportFactory(user=alice, status=Status.PROCESSING)
    refused = ReportFactory(user=alice, status=Status.PENDING, progress_message=WAITING_FOR_QUEUE)
    old_pending = ReportFactory(user=alice, status=Status.PENDING)
    fresh_pending = ReportFactory(user=alice, status=Status.PENDING)
    hard_limit = services.publishing.generation_limits("numbers")[1]
    Report.objects.filter(pk=lost.pk).update(updated_at=now - timedelta(seconds=hard_limit + 61))
    Report.objects.filter(pk=alive.pk).update(updated_at=now - timedelta(seconds=hard_limit))
    Report.objects.filter(pk=old_pending.pk).update(updated_at=now - timedelta(seconds=700))

    data = run_json("reports", "stuck")
    reasons = {item["id"]: item["reason"] for item in data}
    assert reasons == {
        str(lost.pk): "no_heartbeat",
        str(refused.pk): "waiting_for_queue",
        str(old_pending.pk): "pending_too_long",
    }
    assert str(alive.pk) not in reasons and str(fresh_pending.pk) not in reasons
    lost_entry = next(item for item in data if item["id"] == str(lost.pk))
    assert f"hard limit {hard_limit}s + STUCK_MARGIN 60s" in lost_entry["explanation"]
    assert lost_entry["seconds"] >= hard_limit + 61

    assert {i["id"] for i in run_json("reports", "stuck", "--pending-after=0")} == {
        str(lost.pk),
        str(refused.pk),
    }
    out, _ = run("reports", "stuck", "--pending-after=800")
    assert out.strip().endswith("2 stuck report(s).")


# -- queues ----------------------------------------------------------------------------
def test_queues_reads_the_broker(settings):
    data = run_json("queues", "--queue", "cmds-no-such-queue")
    names = [queue["name"] for queue in data["queues"]]
    assert names == [
        settings.ASYNC_REPORTS["QUEUE"],
        settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"],
        "cmds-no-such-queue",
    ]
    missing = data["queues"][2]
    assert missing == {"name": "cmds-no-such-queue", "exists": False, "messages": 0, "consumers": 0}
    assert data["reports"] == {"pending": 0, "processing": 0}


def test_queues_broker_unreachable(monkeypatch):
    from tests.celery_app import app

    # Only the Celery app's URL, restored by monkeypatch: the value is read (and the
    # app's configuration loaded) before it is replaced, so nothing leaks to later tests.
    monkeypatch.setattr(app.conf, "broker_url", "amqp://guest:secret-pw@127.0.0.1:1//")
    with pytest.raises(CommandError, match="Could not read the queues") as caught:
        run("queues", "--timeout=1")
    assert "secret-pw" not in str(caught.value)


def test_reports_requeue_completed_has_no_retry_hint(alice, captured_dispatches):
    report = numbers_report(alice, count=1)
    with pytest.raises(CommandError) as caught:
        run("reports", "requeue", str(report.pk))
    assert str(caught.value) == ("Only pending reports can be queued again; this one is completed.")


def test_generate_report_wait_on_a_deleted_report(alice, captured_dispatches, monkeypatch):
    def sleep(seconds):
        Report.objects.all().delete()

    monkeypatch.setattr(
        "django_async_reports.management.commands.generate_report.time.sleep", sleep
    )
    with pytest.raises(CommandError, match="was deleted while waiting"):
        run("generate_report", "--type=numbers", "--user=alice", "--wait")


def test_queues_leaves_the_broker_url_alone():
    """The broker test above restores the app's URL: later tests publish to the real broker."""
    from django.conf import settings

    from tests.celery_app import app

    assert app.conf.broker_url == settings.CELERY_BROKER_URL
