"""Erasure of a user's reports: ``services.erase_user_data`` and deleting the user.

On the file-system storage and on S3 (moto in server mode), with real
PostgreSQL; ``transaction=True`` wherever the files go on commit.
"""

from __future__ import annotations

import logging

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from django_async_reports import services, signals
from django_async_reports.exceptions import ReportCancelled
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution, WebhookDelivery
from django_async_reports.services import erasure, generation
from django_async_reports.storage import list_files, report_file_name, report_storage, user_folder
from tests.factories import ReportFactory, UserFactory
from tests.helpers import make_report_execution, make_schedule, numbers_report
from tests.s3_server import list_keys

pytestmark = pytest.mark.django_db(transaction=True)


def files_of(user_id) -> list[str]:
    return list_files(user_folder(user_id))


@pytest.fixture
def alice_data(user):
    """Two completed reports, a running one with a partial upload, a schedule's run
    with a webhook attempt."""
    first = numbers_report(user)
    second = numbers_report(user, compress=True)
    running = ReportFactory(user=user, status="processing", attempt=1)
    partial = report_file_name(user.pk, running.pk, "partial", "csv", attempt=1)
    report_storage.save(partial, ContentFile(b"n\r\n1\r\n"))
    schedule = make_schedule(user)
    execution = make_report_execution(schedule, first)
    WebhookDelivery.objects.create(
        report=first,
        execution=execution,
        event="report.completed",
        url="https://hooks.example.com/",
        message_id="m1",
        attempt=1,
    )
    return first, second, running


def check_erased(user_id, other_report):
    assert files_of(user_id) == []
    assert not Report.objects.filter(user_id=user_id).exists()
    assert not ReportSchedule.objects.filter(owner_id=user_id).exists()
    assert not ScheduleExecution.objects.filter(schedule__owner_id=user_id).exists()
    assert not WebhookDelivery.objects.filter(report__user_id=user_id).exists()
    # Another user's report and file are untouched.
    assert Report.objects.filter(pk=other_report.pk).exists()
    assert report_storage.exists(other_report.result_file.name)


class TestEraseUserData:
    def test_deletes_files_then_rows_and_says_what_it_deleted(self, user, other_user, alice_data):
        user_id = user.pk
        bobs = numbers_report(other_user)
        *_, running = alice_data
        assert len(files_of(user_id)) == 3
        cancelled = []
        signals.report_cancelled.connect(
            lambda **kw: cancelled.append(kw["report"].pk), weak=False, dispatch_uid="erase"
        )
        try:
            result = services.erase_user_data(user)
        finally:
            signals.report_cancelled.disconnect(dispatch_uid="erase")

        assert cancelled == [running.pk]  # the running report was cancelled first
        assert result == services.ErasureResult(
            cancelled=1, files=2, reports=3, schedules=1, executions=1, webhook_deliveries=1
        )
        check_erased(user_id, bobs)
        # The account stays: erasing reports is not deleting the user.
        user.refresh_from_db()
        # On the file system the emptied folders go too.
        assert not report_storage.exists(user_folder(user.pk))

    def test_a_run_storing_its_file_after_the_erasure_deletes_it(
        self, user, other_user, monkeypatch
    ):
        user_id = user.pk
        # The erasure lands while the run is uploading: the run's update finds no
        # row (its writes are fenced), and the run deletes the file it stored.
        report = ReportFactory(user=user, parameters={"count": 2, "delay": 0.0, "text": ""})
        claimed = services.claim_report(report.pk)
        name_of = generation.report_file_name

        def erase_then_name(*args, **kwargs):
            services.erase_user_data(user)
            return name_of(*args, **kwargs)

        monkeypatch.setattr(generation, "report_file_name", erase_then_name)

        with pytest.raises(ReportCancelled):
            services.generate(claimed)

        assert files_of(user_id) == []
        assert not Report.objects.filter(pk=report.pk).exists()

    def test_a_storage_error_rolls_everything_back(self, user, alice_data, monkeypatch):
        user_id = user.pk

        def refuse(name):
            raise OSError("storage down")

        monkeypatch.setattr(report_storage, "delete", refuse)

        with pytest.raises(OSError):
            services.erase_user_data(user)

        monkeypatch.undo()
        assert Report.objects.filter(user=user).count() == 3
        assert ReportSchedule.objects.filter(owner=user).count() == 1
        assert len(files_of(user_id)) == 3
        # Called again once the storage is back, it finishes the job.
        assert services.erase_user_data(user).reports == 3
        assert files_of(user_id) == []

    def test_a_folder_whose_report_belongs_to_another_user_is_left_alone(self, user, other_user):
        user_id = user.pk
        # Two user ids may share a slug ("Bob", "bob"); a report row decides.
        bobs = ReportFactory(user=other_user)
        stray = report_file_name(user.pk, bobs.pk, "bobs", "csv", attempt=1)
        report_storage.save(stray, ContentFile(b"x"))
        mine = numbers_report(user)

        assert erasure.delete_user_files(user.pk, [mine.result_file.name]) == 1

        assert files_of(user_id) == [stray]

    def test_files_named_outside_the_users_folder_go_too(self, user, settings):
        report = numbers_report(user)
        old_name = report.result_file.name
        # STORAGE_PREFIX changed since the file was written.
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE_PREFIX": "exports"}

        result = services.erase_user_data(user)

        assert result.files == 1
        assert not report_storage.exists(old_name)


class TestDeletingTheUser:
    def test_user_delete_deletes_their_files_after_the_commit(self, user, other_user, alice_data):
        user_id = user.pk
        bobs = numbers_report(other_user)
        with transaction.atomic():
            user.delete()
            assert len(files_of(user_id)) == 3  # nothing goes before the commit
        check_erased(user_id, bobs)

    def test_a_rolled_back_delete_keeps_the_files(self, user, alice_data):
        user_id = user.pk
        with pytest.raises(RuntimeError), transaction.atomic():
            user.delete()
            raise RuntimeError("rolled back")

        assert len(files_of(user_id)) == 3
        assert Report.objects.filter(user_id=user_id).count() == 3

    def test_admin_delete_of_the_user_deletes_their_files(self, client, user, other_user):
        bobs = numbers_report(other_user)
        numbers_report(user)
        admin = UserFactory(username="root", is_staff=True, is_superuser=True)
        client.force_login(admin)

        response = client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})

        assert response.status_code == 302
        assert files_of(user.pk) == []
        assert report_storage.exists(bobs.result_file.name)

    def test_bulk_delete_of_users_deletes_each_ones_files(self, user, other_user):
        user_id = user.pk
        third = UserFactory(username="carol")
        third_id, other_user_id = third.pk, other_user.pk
        for owner in (user, other_user, third):
            numbers_report(owner)
        type(user).objects.filter(pk__in=[user.pk, third.pk]).delete()

        assert files_of(user_id) == [] and files_of(third_id) == []
        assert len(files_of(other_user_id)) == 1

    def test_a_storage_refusing_the_delete_does_not_stop_it(
        self, user, alice_data, monkeypatch, caplog
    ):
        user_id = user.pk

        def refuse(name):
            raise OSError("storage down")

        monkeypatch.setattr(report_storage, "delete", refuse)

        with caplog.at_level(logging.WARNING, logger="django_async_reports.services.erasure"):
            user.delete()

        assert not type(user).objects.filter(pk=user_id).exists()
        assert "sweep_orphan_files" in caplog.text
        monkeypatch.undo()
        # The files are left to the orphan sweep, which finds them.
        result = services.sweep_orphan_files(delete=True, grace_seconds=0)
        assert result.deleted == 3
        assert list_files(user_folder(user_id)) == []


class TestOnS3:
    def test_erase_user_data_deletes_the_objects(
        self, user, other_user, s3_endpoint, s3_reports, alice_data
    ):
        bobs = numbers_report(other_user)
        prefix = f"reports/{user.pk}/"
        assert len(list_keys(s3_endpoint, s3_reports, prefix)) == 3

        result = services.erase_user_data(user)

        assert (result.files, result.reports) == (2, 3)
        assert list_keys(s3_endpoint, s3_reports, prefix) == []
        assert list_keys(s3_endpoint, s3_reports, f"reports/{other_user.pk}/") == [
            bobs.result_file.name
        ]

    def test_user_delete_deletes_the_objects_after_the_commit(
        self, user, other_user, s3_endpoint, s3_reports, alice_data
    ):
        bobs = numbers_report(other_user)
        prefix = f"reports/{user.pk}/"
        with transaction.atomic():
            user.delete()
            assert len(list_keys(s3_endpoint, s3_reports, prefix)) == 3

        assert list_keys(s3_endpoint, s3_reports, prefix) == []
        assert report_storage.exists(bobs.result_file.name)


def test_deleting_a_user_with_no_reports_touches_nothing(user, other_user):
    bobs = numbers_report(other_user)
    user.delete()
    assert report_storage.exists(bobs.result_file.name)
    assert len(list_files("reports")) == 1
