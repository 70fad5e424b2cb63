"""Retention of finished reports and the cleanup of expired ones (task, command, API)."""

import os
import threading
import time
from collections import Counter
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from django_async_reports import progress, register, registry, retention, services, tasks
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution, WebhookDelivery
from django_async_reports.retention import CleanupResult, cleanup_expired_reports
from django_async_reports.storage import report_file_name, report_storage
from tests.factories import ReportFactory, UserFactory
from tests.helpers import detail, set_reports
from tests.testapp.reports import NumbersReport

URL = "/api/v1/reports/"
DEFAULT_RETENTION = 7 * 24 * 3600


def run_to_completion(report):
    services.generate(services.claim_report(report.pk))
    services.post_process(report.pk)
    report.refresh_from_db()
    assert report.status == Report.Status.COMPLETED
    return report


def expired_report(user, *, status="completed", with_file=True, expired_for=timedelta(hours=1)):
    """A finished report whose expires_at passed ``expired_for`` ago, with a stored file."""
    now = timezone.now()
    report = ReportFactory(
        user=user,
        status=status,
        completed_at=now - expired_for - timedelta(days=7),
        expires_at=now - expired_for,
    )
    if with_file:
        name = report_file_name(user.pk, report.pk, report.title, "csv")
        stored = report_storage.save(name, ContentFile(b"n,square,text\n1,1,x\n"))
        Report.objects.filter(pk=report.pk).update(result_file=stored)
        report.refresh_from_db()
    return report


def refuse_to_delete(monkeypatch, refused):
    """Make the file-system storage raise when asked to delete ``refused``."""
    real_delete = FileSystemStorage.delete

    def delete(self, name):
        if name == refused:
            raise PermissionError(f"storage refused to delete {name}")
        real_delete(self, name)

    monkeypatch.setattr(FileSystemStorage, "delete", delete)


def report_folder(report):
    return os.path.join(django_settings.MEDIA_ROOT, os.path.dirname(report.result_file.name))


def remaining_ids():
    return set(Report.objects.values_list("pk", flat=True))


@pytest.fixture
def short_lived():
    """A temporary type keeping its reports 5 minutes."""

    class ShortLivedReport(NumbersReport):
        report_type = "short_lived_for_test"
        retention = timedelta(minutes=5)

    register(ShortLivedReport)
    try:
        yield ShortLivedReport
    finally:
        registry.unregister("short_lived_for_test")


# -- expires_at ----------------------------------------------------------------------
@pytest.mark.django_db
class TestExpiry:
    def test_default_is_completed_at_plus_retention_seconds(self, user):
        report = run_to_completion(ReportFactory(user=user))
        assert report.expires_at - report.completed_at == timedelta(seconds=DEFAULT_RETENTION)
        assert report.is_expired is False

    def test_retention_seconds_setting(self, user, settings):
        set_reports(settings, RETENTION_SECONDS=90)
        report = run_to_completion(ReportFactory(user=user))
        assert report.expires_at - report.completed_at == timedelta(seconds=90)

    def test_expiry_for_an_unregistered_type_uses_the_setting(self, settings):
        at = timezone.now()
        assert services.expiry_for("gone_type", at) == at + timedelta(seconds=DEFAULT_RETENTION)
        set_reports(settings, RETENTION_SECONDS=60)
        assert services.expiry_for("gone_type", at) == at + timedelta(seconds=60)

    @pytest.mark.parametrize("retention_value", [300, timedelta(minutes=5)])
    def test_type_retention_overrides_the_setting(self, short_lived, settings, retention_value):
        short_lived.retention = retention_value
        set_reports(settings, RETENTION_SECONDS=90)
        at = timezone.now()
        assert services.expiry_for("short_lived_for_test", at) == at + timedelta(seconds=300)
        assert services.expiry_for("numbers", at) == at + timedelta(seconds=90)

    def test_completed_report_of_a_type_with_retention(self, user, short_lived):
        report = run_to_completion(ReportFactory(user=user, report_type="short_lived_for_test"))
        assert report.expires_at - report.completed_at == timedelta(minutes=5)

    def test_failed_report_of_a_type_with_retention(self, user, short_lived):
        report = ReportFactory(user=user, report_type="short_lived_for_test", status="processing")
        failed = services.fail_report(report.pk, "the data source is down")
        assert failed.status == Report.Status.FAILED
        assert failed.completed_at is not None
        assert failed.expires_at - failed.completed_at == timedelta(minutes=5)

    def test_cancelled_report_of_a_type_with_retention(self, user, short_lived):
        report = ReportFactory(user=user, report_type="short_lived_for_test")
        cancelled = services.cancel_report(report)
        assert cancelled.status == Report.Status.CANCELLED
        assert cancelled.expires_at - cancelled.completed_at == timedelta(minutes=5)

    def test_active_reports_have_no_expiry(self, user):
        report = ReportFactory(user=user)
        services.claim_report(report.pk)
        report.refresh_from_db()
        assert report.status == Report.Status.PROCESSING
        assert report.expires_at is None and report.is_expired is False

    def test_types_lists_retention_seconds(self, auth_client, short_lived):
        types = {t["report_type"]: t for t in auth_client.get(URL + "types/").json()}
        assert types["short_lived_for_test"]["retention_seconds"] == 300
        assert types["numbers"]["retention_seconds"] == DEFAULT_RETENTION


# -- the API ---------------------------------------------------------------------------
@pytest.mark.django_db
class TestApi:
    def test_detail_shows_expires_at_and_expired(self, auth_client, user):
        report = run_to_completion(ReportFactory(user=user))
        body = auth_client.get(detail(report)).json()
        assert body["expires_at"] == report.expires_at.isoformat().replace("+00:00", "Z")
        assert body["expired"] is False
        assert body["download_url"].endswith(detail(report, "download"))

        Report.objects.filter(pk=report.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        body = auth_client.get(detail(report)).json()
        assert body["expired"] is True
        assert body["download_url"] is None

    def test_download_of_expired_report_is_410_for_the_owner(self, auth_client, user):
        report = run_to_completion(ReportFactory(user=user))
        expires_at = timezone.now() - timedelta(minutes=1)
        Report.objects.filter(pk=report.pk).update(expires_at=expires_at)

        response = auth_client.get(detail(report, "download"))

        assert response.status_code == 410
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert "expired" in body["detail"] and "regenerate" in body["detail"]
        assert body["expires_at"] == expires_at.isoformat().replace("+00:00", "Z")
        # The file is still there until the cleanup runs; it is just not served.
        assert report_storage.exists(report.result_file.name)

    def test_expired_report_of_another_user_is_404(self, other_client, user):
        report = run_to_completion(ReportFactory(user=user))
        assert other_client.get(detail(report, "download")).status_code == 404
        Report.objects.filter(pk=report.pk).update(expires_at=timezone.now())
        assert other_client.get(detail(report, "download")).status_code == 404
        assert other_client.get(detail(report)).status_code == 404

    def test_expired_report_anonymous_is_401(self, api_client, user):
        report = expired_report(user)
        assert api_client.get(detail(report, "download")).status_code == 401

    def test_expired_report_is_404_once_cleaned_up(self, auth_client, user):
        report = expired_report(user)
        assert auth_client.get(detail(report, "download")).status_code == 410
        cleanup_expired_reports()
        assert auth_client.get(detail(report, "download")).status_code == 404
        assert auth_client.get(detail(report)).status_code == 404


# -- cleanup ---------------------------------------------------------------------------
@pytest.mark.django_db
class TestCleanup:
    def test_deletes_expired_finished_reports_and_their_files(self, user, other_user):
        completed = expired_report(user)
        failed = expired_report(other_user, status="failed", with_file=False)
        cancelled = expired_report(user, status="cancelled", with_file=False)
        file_name = completed.result_file.name
        folder = report_folder(completed)
        assert os.path.isdir(folder)
        progress.write_cache(completed.pk, status="completed", progress=100)

        result = cleanup_expired_reports()

        assert result == CleanupResult(reports=3, files=1, batches=1)
        assert not Report.objects.filter(pk__in=[completed.pk, failed.pk, cancelled.pk]).exists()
        assert not report_storage.exists(file_name)
        assert not os.path.exists(folder)  # the report's own folder is removed
        assert os.path.isdir(os.path.dirname(folder))  # the user's folder stays
        assert progress.read_cache(completed.pk) is None

    def test_keeps_unexpired_and_active_reports(self, user):
        fresh = run_to_completion(ReportFactory(user=user))
        no_expiry = ReportFactory(user=user, status="failed", expires_at=None)
        past = timezone.now() - timedelta(days=1)
        pending = ReportFactory(user=user, status="pending", expires_at=past)
        processing = ReportFactory(user=user, status="processing", expires_at=past)
        expired = expired_report(user)

        result = cleanup_expired_reports()

        assert result == CleanupResult(reports=1, files=1, batches=1)
        assert remaining_ids() == {fresh.pk, no_expiry.pk, pending.pk, processing.pk}
        assert not Report.objects.filter(pk=expired.pk).exists()
        assert report_storage.exists(fresh.result_file.name)

    def test_nothing_to_do(self, user):
        run_to_completion(ReportFactory(user=user))
        assert cleanup_expired_reports() == CleanupResult(reports=0, files=0, batches=0)
        assert Report.objects.count() == 1

    def test_expires_at_exactly_now_is_expired(self, user):
        now = timezone.now()
        report = ReportFactory(user=user, status="completed", completed_at=now, expires_at=now)
        assert cleanup_expired_reports(now=now).reports == 1
        assert not Report.objects.filter(pk=report.pk).exists()

    def test_now_argument_decides_what_is_expired(self, user):
        report = run_to_completion(ReportFactory(user=user))
        assert cleanup_expired_reports(now=report.expires_at - timedelta(seconds=1)).reports == 0
        assert cleanup_expired_reports(now=report.expires_at).reports == 1
        assert not Report.objects.exists()

    def test_batches(self, user):
        for _ in range(5):
            expired_report(user)

        result = cleanup_expired_reports(batch_size=2)

        assert result == CleanupResult(reports=5, files=5, batches=3)
        assert not Report.objects.exists()
        assert os.listdir(os.path.join(django_settings.MEDIA_ROOT, "reports", str(user.pk))) == []

    def test_max_batches_deletes_the_oldest_first(self, user):
        reports = [expired_report(user, expired_for=timedelta(hours=h)) for h in (1, 5, 3, 4, 2)]
        oldest_two = {reports[1].pk, reports[3].pk}  # expired 5 and 4 hours ago

        result = cleanup_expired_reports(batch_size=2, max_batches=1)

        assert result == CleanupResult(reports=2, files=2, batches=1)
        assert remaining_ids() == {r.pk for r in reports} - oldest_two

    def test_batch_size_setting_is_the_default(self, user, settings):
        set_reports(settings, CLEANUP_BATCH_SIZE=2)
        for _ in range(3):
            expired_report(user, with_file=False)
        assert cleanup_expired_reports() == CleanupResult(reports=3, files=0, batches=2)

    def test_missing_file_does_not_stop_the_cleanup(self, user):
        report = expired_report(user)
        report_storage.delete(report.result_file.name)
        assert cleanup_expired_reports().reports == 1
        assert not Report.objects.exists()

    def test_file_that_cannot_be_deleted_keeps_its_row(self, user, monkeypatch):
        # Deleting the row would orphan the file: it stays for the next run.
        stuck = expired_report(user, expired_for=timedelta(hours=3))
        others = [expired_report(user) for _ in range(3)]
        refuse_to_delete(monkeypatch, stuck.result_file.name)

        result = cleanup_expired_reports(batch_size=2)

        assert result == CleanupResult(reports=3, files=3, batches=2, kept=1)
        assert remaining_ids() == {stuck.pk}
        assert report_storage.exists(stuck.result_file.name)
        assert not any(report_storage.exists(r.result_file.name) for r in others)

        monkeypatch.undo()
        assert cleanup_expired_reports() == CleanupResult(reports=1, files=1, batches=1)
        assert not Report.objects.exists()
        assert not report_storage.exists(stuck.result_file.name)

    def test_schedule_executions_outlive_their_report(self, user):
        report = expired_report(user)
        schedule = ReportSchedule.objects.create(
            owner=user, report_type="numbers", title="Daily numbers", frequency="daily"
        )
        execution = ScheduleExecution.objects.create(
            schedule=schedule,
            due_at=timezone.now() - timedelta(days=8),
            report=report,
            status="completed",
            row_count=1,
        )
        WebhookDelivery.objects.create(
            report=report,
            event="report.completed",
            url="https://hooks.example.com/r",
            message_id="msg_1",
            attempt=1,
        )

        assert cleanup_expired_reports().reports == 1

        execution.refresh_from_db()
        assert execution.report_id is None
        assert (execution.status, execution.row_count) == ("completed", 1)
        assert not WebhookDelivery.objects.exists()  # they are the report's own

    def test_celery_task_returns_counts(self, user, settings):
        set_reports(settings, CLEANUP_BATCH_SIZE=2)
        for _ in range(2):
            expired_report(user)
        expired_report(user, status="failed", with_file=False)
        kept = run_to_completion(ReportFactory(user=user))

        assert tasks.cleanup_expired_reports() == {
            "reports": 3,
            "files": 2,
            "batches": 2,
            "kept": 0,
        }
        assert tasks.cleanup_expired_reports.name == "django_async_reports.cleanup_expired_reports"
        assert remaining_ids() == {kept.pk}


# -- the management command ------------------------------------------------------------
@pytest.mark.django_db
class TestCommand:
    def test_dry_run_counts_and_deletes_nothing(self, user):
        reports = [expired_report(user) for _ in range(3)]
        ReportFactory(user=user, status="processing", expires_at=timezone.now())
        out = StringIO()

        call_command("cleanup_reports", "--dry-run", stdout=out)

        assert out.getvalue() == "3 expired report(s) would be deleted.\n"
        assert Report.objects.count() == 4
        assert all(report_storage.exists(r.result_file.name) for r in reports)

    def test_deletes_in_batches(self, user):
        for _ in range(2):
            expired_report(user)
        expired_report(user, status="cancelled", with_file=False)
        kept = run_to_completion(ReportFactory(user=user))
        out = StringIO()

        call_command("cleanup_reports", "--batch-size", "2", stdout=out)

        assert out.getvalue() == "Deleted 3 expired report(s) and 2 file(s) in 2 batch(es).\n"
        assert remaining_ids() == {kept.pk}

    def test_nothing_expired(self, user):
        out = StringIO()
        call_command("cleanup_reports", stdout=out)
        assert out.getvalue() == "Deleted 0 expired report(s) and 0 file(s) in 0 batch(es).\n"

    def test_reports_kept_when_a_file_cannot_be_deleted(self, user, monkeypatch):
        stuck = expired_report(user)
        expired_report(user)
        refuse_to_delete(monkeypatch, stuck.result_file.name)
        out, err = StringIO(), StringIO()

        call_command("cleanup_reports", stdout=out, stderr=err)

        assert out.getvalue() == "Deleted 1 expired report(s) and 1 file(s) in 1 batch(es).\n"
        assert err.getvalue() == (
            "Kept 1 expired report(s) whose file could not be deleted (see the log); "
            "the next run tries again.\n"
        )
        assert remaining_ids() == {stuck.pk}

    @pytest.mark.parametrize("size", ["0", "-3"])
    def test_batch_size_must_be_positive(self, user, size):
        expired_report(user)
        with pytest.raises(CommandError, match="--batch-size must be at least 1"):
            call_command("cleanup_reports", "--batch-size", size)
        assert Report.objects.count() == 1


# -- concurrency -------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_two_cleanups_at_once_delete_each_report_exactly_once(monkeypatch):
    owner = UserFactory(username="cleanup-race")
    reports = [expired_report(owner, expired_for=timedelta(minutes=n + 1)) for n in range(40)]
    deleted_ids: list = []
    deleted_files: list = []
    real_delete_files = retention._delete_files
    real_delete_cache = progress.delete_cache

    def slow_delete_files(report_id, user_id, name):
        deleted_files.append(name)
        time.sleep(0.005)  # long enough for the two runs to overlap
        return real_delete_files(report_id, user_id, name)

    def record_cache_delete(report_id):
        deleted_ids.append(report_id)
        real_delete_cache(report_id)

    monkeypatch.setattr(retention, "_delete_files", slow_delete_files)
    monkeypatch.setattr(progress, "delete_cache", record_cache_delete)
    barrier = threading.Barrier(2)
    results: list[CleanupResult] = []
    errors: list[BaseException] = []

    def cleanup():
        try:
            barrier.wait()
            results.append(cleanup_expired_reports(batch_size=5))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=cleanup) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(results) == 2
    assert sum(r.reports for r in results) == 40
    assert sum(r.files for r in results) == 40
    assert all(r.reports > 0 for r in results), results  # both took a share
    assert Counter(deleted_ids) == Counter({r.pk: 1 for r in reports})
    assert Counter(deleted_files) == Counter({r.result_file.name: 1 for r in reports})
    assert not Report.objects.exists()
    assert not any(report_storage.exists(r.result_file.name) for r in reports)


@pytest.mark.django_db(transaction=True)
def test_cleanup_skips_rows_locked_by_another_transaction():
    owner = UserFactory(username="cleanup-locked")
    reports = [expired_report(owner, expired_for=timedelta(minutes=10 - n)) for n in range(10)]
    oldest = [r.pk for r in reports[:3]]  # expired 10, 9 and 8 minutes ago
    locked = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold_lock():
        try:
            with transaction.atomic():
                rows = list(
                    Report.objects.select_for_update().filter(pk__in=oldest).order_by("expires_at")
                )
                assert len(rows) == 3
                locked.set()
                release.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        started = time.monotonic()
        result = cleanup_expired_reports(batch_size=5)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=60)

    assert not errors, errors
    # It did not wait for the lock (the holder would have kept it 30 seconds).
    assert elapsed < 10
    assert result == CleanupResult(reports=7, files=7, batches=2)
    assert remaining_ids() == set(oldest)
    assert all(report_storage.exists(r.result_file.name) for r in reports[:3])
    assert not any(report_storage.exists(r.result_file.name) for r in reports[3:])

    # Once the lock is released, the next run takes them.
    assert cleanup_expired_reports(batch_size=5) == CleanupResult(reports=3, files=3, batches=1)
    assert not Report.objects.exists()


class TestLeftoversAndRetry:
    def test_cleanup_also_removes_leftovers_in_the_reports_own_folder(self, user, settings):
        # A crash between completing a compressed report and deleting its
        # uncompressed original leaves the original beside the .gz.
        report = expired_report(user)
        leftover = report.result_file.name.removesuffix(".csv") + ".raw.csv"
        report_storage.save(leftover, ContentFile(b"n\n1\n"))
        neighbour = expired_report(user, expired_for=timedelta(days=-1))  # not expired yet

        assert cleanup_expired_reports().reports == 1

        folder = Path(settings.MEDIA_ROOT) / report.result_file.name.rsplit("/", 1)[0]
        assert not folder.exists()
        assert not report_storage.exists(leftover)
        assert report_storage.exists(neighbour.result_file.name)

    def test_retry_clears_the_old_expiry(self, user, captured_dispatches):
        report = expired_report(user, status="failed", with_file=False)
        assert report.is_expired
        retried = services.retry_report(report)
        assert retried.status == "pending"
        assert retried.expires_at is None
        assert not retried.is_expired
