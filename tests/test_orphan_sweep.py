"""The orphan sweep: ``services.sweep_orphan_files`` and ``manage.py sweep_orphan_files``.

On the file-system storage and on S3 (moto in server mode), with real PostgreSQL.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

import pytest
from django.core.checks import Error
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_async_reports import services
from django_async_reports.checks import check_settings
from django_async_reports.conf import report_settings
from django_async_reports.storage import list_files, report_file_name, report_storage
from tests.factories import ReportFactory
from tests.helpers import numbers_report, set_reports

pytestmark = pytest.mark.django_db


def store(name: str, *, age: float = 0.0) -> str:
    """Save a small file under ``name``; on the file system, make it ``age`` seconds old."""
    stored = report_storage.save(name, ContentFile(b"x,y\r\n1,2\r\n"))
    if age:
        then = time.time() - age
        os.utime(report_storage.path(stored), (then, then))
    return stored


class Layout:
    """Owned, orphan, young and unrecognised files of one storage."""

    def __init__(self, user, *, age: float) -> None:
        self.owned = numbers_report(user).result_file.name
        running = ReportFactory(user=user, status="processing", attempt=1)
        # A report being written right now has its row: never an orphan.
        self.writing = store(report_file_name(user.pk, running.pk, "partial", "csv", attempt=1))
        gone = uuid.uuid4()  # a report whose row was deleted
        self.orphans = [
            store(report_file_name(user.pk, gone, "old", "csv", attempt=1), age=age),
            store(report_file_name(user.pk, gone, "old", "csv.gz", attempt=2), age=age),
            # A deleted user's folder: everything in it goes, layout or not.
            store(report_file_name(999_999, uuid.uuid4(), "theirs", "csv"), age=age),
            store("reports/999999/not-a-report/notes.txt", age=age),
        ]
        self.young = store(report_file_name(user.pk, uuid.uuid4(), "new", "csv"))
        # Outside the layout, in an existing user's folder or at the top: never touched.
        self.unrecognised = [
            store(f"reports/{user.pk}/not-a-report/notes.txt", age=age),
            store("reports/README.txt", age=age),
        ]


@pytest.fixture
def layout(user):
    return Layout(user, age=2 * 3600)


def test_dry_run_lists_orphans_and_deletes_nothing(layout):
    before = sorted(list_files("reports"))

    result = services.sweep_orphan_files()

    assert sorted(result.orphans) == sorted(layout.orphans)
    assert (result.deleted, result.young, result.unrecognised) == (0, 1, 2)
    assert result.owned == 2  # the completed report's file and the one being written
    assert sorted(list_files("reports")) == before


def test_delete_removes_orphans_only(layout):
    result = services.sweep_orphan_files(delete=True)

    assert result.deleted == len(layout.orphans) == 4
    remaining = set(list_files("reports"))
    assert remaining == {layout.owned, layout.writing, layout.young, *layout.unrecognised}
    # Emptied folders go on the file system.
    assert not os.path.exists(report_storage.path("reports/999999"))
    # A second sweep finds nothing more.
    assert services.sweep_orphan_files(delete=True).orphans == []


class TestGraceSetting:
    def test_default_is_an_hour(self):
        assert report_settings.ORPHAN_GRACE_SECONDS == 3600

    def test_override_shortens_it(self, settings, user):
        young = store(report_file_name(user.pk, uuid.uuid4(), "a", "csv"), age=60)
        assert services.sweep_orphan_files().young == 1
        set_reports(settings, ORPHAN_GRACE_SECONDS=30)
        assert services.sweep_orphan_files().orphans == [young]

    def test_zero_turns_it_off(self, settings, user):
        fresh = store(report_file_name(user.pk, uuid.uuid4(), "a", "csv"))
        set_reports(settings, ORPHAN_GRACE_SECONDS=0)
        result = services.sweep_orphan_files(delete=True)
        assert (result.orphans, result.deleted) == ([fresh], 1)

    def test_argument_overrides_the_setting(self, user):
        fresh = store(report_file_name(user.pk, uuid.uuid4(), "a", "csv"))
        assert services.sweep_orphan_files(grace_seconds=0).orphans == [fresh]

    @pytest.mark.parametrize("bad", [-1, "3600", None])
    def test_a_bad_value_is_a_system_check_error(self, settings, bad):
        set_reports(settings, ORPHAN_GRACE_SECONDS=bad)
        messages = check_settings()
        assert [m.id for m in messages] == ["django_async_reports.E002"]
        assert isinstance(messages[0], Error) and "ORPHAN_GRACE_SECONDS" in messages[0].msg


class TestCommand:
    def test_dry_run_by_default_with_a_summary(self, layout, capsys):
        call_command("sweep_orphan_files")
        out = capsys.readouterr().out
        for path in layout.orphans:
            assert path in out
        assert "4 orphan file(s); 4 would be deleted (dry run: add --delete)" in out
        assert "1 younger than the grace period, kept; 2 unrecognised, kept" in out
        assert all(report_storage.exists(path) for path in layout.orphans)

    def test_delete(self, layout, capsys):
        call_command("sweep_orphan_files", "--delete")
        assert "4 orphan file(s); 4 deleted;" in capsys.readouterr().out
        assert not any(report_storage.exists(path) for path in layout.orphans)
        assert report_storage.exists(layout.owned)

    def test_grace_option(self, layout, capsys):
        call_command("sweep_orphan_files", "--delete", "--grace", "0")
        assert "5 orphan file(s); 5 deleted; 0 younger" in capsys.readouterr().out
        assert not report_storage.exists(layout.young)

    def test_negative_grace_is_refused(self):
        with pytest.raises(CommandError, match="--grace"):
            call_command("sweep_orphan_files", "--grace", "-1")


class TestOnS3:
    """On S3 the objects cannot be aged: the sweep is run "in the future" instead."""

    def test_sweep_deletes_orphan_objects_only(self, user, s3_reports):
        layout = Layout(user, age=0)
        later = timezone.now() + timedelta(hours=2)

        assert services.sweep_orphan_files().young == 5  # every orphan is young now
        result = services.sweep_orphan_files(delete=True, now=later)

        assert sorted(result.orphans) == sorted([*layout.orphans, layout.young])
        assert result.deleted == 5
        remaining = set(list_files("reports"))
        assert remaining == {layout.owned, layout.writing, *layout.unrecognised}
