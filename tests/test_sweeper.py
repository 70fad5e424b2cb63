"""The outbox and the sweeper, in process: unsent steps are sent, lost runs are taken back.

The messages are captured (``captured_dispatches``); the real broker's part is
in ``tests/faults/``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_async_reports import progress, services
from django_async_reports.exceptions import ReportCancelled
from django_async_reports.models import Report
from django_async_reports.storage import report_storage
from tests.factories import ReportFactory
from tests.helpers import set_reports

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=2)


def steps(captured):
    return [(str(report.pk), step) for report, step, _countdown in captured.steps]


def backdate(report, **fields):
    """Move the report's timestamps into the past (``updated_at`` too, unless given)."""
    values = {"updated_at": timezone.now() - LONG_AGO, **fields}
    Report.objects.filter(pk=report.pk).update(**values)
    report.refresh_from_db()
    return report


@pytest.fixture
def broker_down(monkeypatch):
    def refuse(report, step, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)


class TestUnsentSteps:
    def test_a_generation_the_broker_refused_is_sent_by_the_sweep(
        self, user, broker_down, monkeypatch, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            report = services.request_report(user=user, report_type="numbers")
        report.refresh_from_db()
        assert (report.status, report.next_step) == ("pending", "generate")
        assert report.progress_message == services.WAITING_FOR_QUEUE

        monkeypatch.undo()  # the broker is back
        sent = []
        monkeypatch.setattr(
            "django_async_reports.services.publishing.publish_step",
            lambda report, step, **kw: sent.append((str(report.pk), step)),
        )
        # Within the grace a publisher may still be sending it: left alone.
        assert services.sweep().sent == 0
        backdate(report, next_step_at=timezone.now() - timedelta(minutes=5))

        result = services.sweep()

        assert (result.sent, result.broker_down) == (1, False)
        assert sent == [(str(report.pk), "generate")]
        report.refresh_from_db()
        assert (report.status, report.next_step, report.next_step_at) == ("pending", "", None)

    def test_a_broker_still_down_stops_the_sweep_and_keeps_every_step(self, user, broker_down):
        old = timezone.now() - timedelta(minutes=5)
        reports = [
            ReportFactory(user=user, next_step="generate", next_step_at=old) for _ in range(3)
        ]
        result = services.sweep()
        assert (result.sent, result.broker_down) == (0, True)
        assert set(Report.objects.values_list("next_step", flat=True)) == {"generate"}
        assert len(reports) == 3

    def test_a_step_the_report_has_moved_past_is_cleared(self, user, captured_dispatches):
        old = timezone.now() - timedelta(minutes=5)
        report = ReportFactory(
            user=user, status="cancelled", next_step="generate", next_step_at=old
        )
        result = services.sweep()
        assert (result.sent, result.cleared) == (0, 1)
        assert captured_dispatches.steps == []
        report.refresh_from_db()
        assert report.next_step == ""

    def test_a_post_processing_hand_off_that_failed_is_sent(self, user, captured_dispatches):
        old = timezone.now() - timedelta(minutes=5)
        report = ReportFactory(
            user=user,
            status="processing",
            result_file="reports/x/y.csv",
            next_step="post_process",
            next_step_at=old,
        )
        assert services.sweep().sent == 1
        assert steps(captured_dispatches) == [(str(report.pk), "post_process")]

    def test_a_sent_notification_is_sent_again_only_once_its_lease_expired(
        self, user, captured_dispatches
    ):
        old = timezone.now() - timedelta(minutes=5)
        report = ReportFactory(user=user, status="failed", next_step="notify", next_step_at=old)
        assert services.sweep().sent == 1
        report.refresh_from_db()
        # Queued, not delivered: the step stays, due again after the lease.
        assert report.next_step == "notify"
        assert report.next_step_at > timezone.now() + timedelta(seconds=500)
        assert services.sweep().sent == 0


class TestNotificationLease:
    def test_a_notification_whose_worker_died_is_taken_over_after_its_lease(
        self, user, settings, mailoutbox
    ):
        report = ReportFactory(user=user, status="failed", send_email=True, next_step="notify")
        # A run claimed it and died before delivering: the lease is held...
        Report.objects.filter(pk=report.pk).update(notified_at=timezone.now())
        assert services.notify_report(report.pk) is False
        assert mailoutbox == []
        # ...until it expires; then the next run delivers, once.
        expired = timezone.now() - timedelta(
            seconds=settings.ASYNC_REPORTS.get("NOTIFY_LEASE", 600) + 1
        )
        Report.objects.filter(pk=report.pk).update(notified_at=expired)
        assert services.notify_report(report.pk) is True
        assert services.notify_report(report.pk) is False
        assert len(mailoutbox) == 1
        report.refresh_from_db()
        assert report.next_step == ""

    def test_the_message_id_is_the_same_each_time(self, user, mailoutbox):
        report = ReportFactory(user=user, status="failed", send_email=True, next_step="notify")
        assert services.notify_report(report.pk) is True
        Report.objects.filter(pk=report.pk).update(next_step="notify", notified_at=None)
        assert services.notify_report(report.pk) is True
        first, second = mailoutbox
        assert first.extra_headers["Message-ID"] == second.extra_headers["Message-ID"]
        assert str(report.pk) in first.extra_headers["Message-ID"]


class TestLostRuns:
    def test_a_processing_report_without_heartbeat_is_queued_again_under_a_new_task_id(
        self, user, captured_dispatches
    ):
        report = ReportFactory(user=user, status="processing", attempt=1, celery_task_id="old")
        backdate(report)

        result = services.sweep()

        assert (result.requeued, result.failed) == (1, 0)
        report.refresh_from_db()
        assert (report.status, report.worker_losses, report.next_step) == ("pending", 1, "")
        assert report.celery_task_id != "old"
        assert steps(captured_dispatches) == [(str(report.pk), "generate")]
        # The lost message, should it come back, cannot take the report.
        assert services.claim_report(report.pk, redelivered=True, task_id="old") is not None
        report.refresh_from_db()
        assert report.celery_task_id == "old"  # it claimed the *pending* report: one run only
        assert services.claim_report(report.pk, redelivered=True, task_id="new") is None

    def test_one_with_a_recent_heartbeat_is_left_alone(self, user, captured_dispatches):
        report = ReportFactory(user=user, status="processing", attempt=1)
        backdate(report, updated_at=timezone.now() - timedelta(seconds=30))
        assert services.sweep().requeued == 0
        report.refresh_from_db()
        assert report.status == "processing"

    def test_the_limit_is_the_types_own_hard_limit_plus_the_margin(
        self, user, settings, captured_dispatches
    ):
        set_reports(settings, SOFT_TIME_LIMIT=600, TIME_LIMIT=None, STUCK_MARGIN=300)
        report = ReportFactory(user=user, status="processing", attempt=1)
        backdate(report, updated_at=timezone.now() - timedelta(seconds=900))  # < 660 + 300
        assert services.sweep().requeued == 0
        backdate(report, updated_at=timezone.now() - timedelta(seconds=1000))
        assert services.sweep().requeued == 1

    def test_a_generated_one_goes_on_to_post_processing(self, user, captured_dispatches):
        report = ReportFactory(
            user=user, status="processing", attempt=1, result_file="reports/1/x/1/a.csv"
        )
        backdate(report)
        assert services.sweep().requeued == 1
        report.refresh_from_db()
        assert report.status == "processing"
        assert steps(captured_dispatches) == [(str(report.pk), "post_process")]

    def test_a_report_lost_too_often_fails_with_a_reason(
        self, user, settings, captured_dispatches, django_capture_on_commit_callbacks
    ):
        set_reports(settings, MAX_WORKER_LOSSES=3)
        report = ReportFactory(user=user, status="processing", attempt=3, worker_losses=2)
        backdate(report)
        with django_capture_on_commit_callbacks(execute=True):
            result = services.sweep()
        assert (result.requeued, result.failed) == (0, 1)
        report.refresh_from_db()
        assert report.status == "failed"
        assert "lost 3 times" in report.error_message
        assert steps(captured_dispatches) == [(str(report.pk), "notify")]

    def test_the_command_sweeps_too(self, user, captured_dispatches, capsys):
        report = ReportFactory(user=user, status="processing", attempt=1)
        backdate(report)
        call_command("sweep_reports")
        assert "queued 1 lost run(s) again" in capsys.readouterr().out
        report.refresh_from_db()
        assert report.status == "pending"


class TestFencing:
    """A stale run (its report taken over by a later claim) can write nothing."""

    def test_progress_of_a_stale_run_is_refused_and_stops_it(self, user, captured_dispatches):
        report = ReportFactory(user=user, status="processing", attempt=2)
        stale = progress.ProgressTracker(report.pk, 10, attempt=1)
        current = progress.ProgressTracker(report.pk, 10, attempt=2)
        assert stale.publish(50, "stale") is False
        assert stale.still_processing() is False
        assert current.publish(20, "current") is True
        report.refresh_from_db()
        assert (report.progress, report.progress_message) == (20, "current")

    def test_the_stale_runs_file_never_replaces_the_winners(
        self, user, captured_dispatches, django_capture_on_commit_callbacks, monkeypatch
    ):
        with django_capture_on_commit_callbacks(execute=True):
            report = services.request_report(user=user, report_type="numbers")
        stale = services.claim_report(report.pk)
        assert stale.attempt == 1
        # Its worker is presumed lost; the sweeper queues it again, another run claims it.
        backdate(stale)
        services.sweep()
        winner = services.generate(services.claim_report(report.pk))
        assert winner.attempt == 2 and "/2/" in winner.result_file.name

        # The stale run was only paused (a partition): it misses its checks and
        # finishes its file; its final write is refused and its file removed.
        monkeypatch.setattr(progress.ProgressTracker, "publish", lambda self, p, m: True)
        monkeypatch.setattr(progress.ProgressTracker, "advance", lambda self, n: True)
        with pytest.raises(ReportCancelled):
            services.generate(stale)
        report.refresh_from_db()
        assert report.result_file.name == winner.result_file.name
        assert report.attempt == 2
        folder = winner.result_file.name.rsplit("/", 2)[0]
        assert report_storage.listdir(f"{folder}/2")[1] == [
            winner.result_file.name.rsplit("/", 1)[1]
        ]
        assert report_storage.listdir(f"{folder}/1")[1] == []  # the stale run's file is gone

    def test_a_stale_run_can_neither_retry_nor_fail_the_report(self, user, captured_dispatches):
        report = ReportFactory(user=user, status="processing", attempt=2)
        stale = Report.objects.get(pk=report.pk)
        stale.attempt = 1
        assert services.schedule_retry(stale, "OperationalError: gone") is False
        assert services.fail_report(report.pk, "Timeout", attempt=1) is None
        report.refresh_from_db()
        assert (report.status, report.retry_count) == ("processing", 0)
