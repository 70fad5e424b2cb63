"""The ledger's negative control: it sees a lost report, a stuck one, a wrong or extra file.

A fault case that passed because its check could not fail would prove nothing.
"""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile

from django_async_reports.storage import report_file_name, report_storage
from tests.factories import ReportFactory, UserFactory
from tests.faults.ledger import check_ledger

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


def stored(report, content: bytes, attempt: int = 1) -> str:
    name = report_file_name(report.user_id, report.pk, "ledger", "csv", attempt=attempt)
    return report_storage.save(name, ContentFile(content))


def test_a_lost_report_fails_the_ledger(media_root):
    lost = ReportFactory(status="pending")  # committed, and no message will ever come
    with pytest.raises(AssertionError, match=str(lost.pk)):
        check_ledger([str(lost.pk)], media_root, timeout=1)


def test_a_report_not_yet_notified_fails_the_ledger(media_root):
    report = ReportFactory(status="failed", next_step="notify")
    with pytest.raises(AssertionError, match="notify"):
        check_ledger([str(report.pk)], media_root, timeout=1)


def test_a_checksum_mismatch_or_a_second_file_fails_the_ledger(media_root):
    report = ReportFactory(status="completed", result_data={"checksum": "sha256:" + "0" * 64})
    stored(report, b"n\n1\n")
    with pytest.raises(AssertionError):
        check_ledger([str(report.pk)], media_root, timeout=1)
    good = ReportFactory(status="completed")
    name = stored(good, b"n\n1\n")
    good.result_data = {"checksum": "sha256:" + hashlib.sha256(b"n\n1\n").hexdigest()}
    good.result_file = name
    good.save()
    assert check_ledger([str(good.pk)], media_root, timeout=1)[str(good.pk)] == good
    stored(good, b"stale run\n", attempt=2)  # a second run's file left behind
    with pytest.raises(AssertionError):
        check_ledger([str(good.pk)], media_root, timeout=1)


def test_a_failed_report_with_a_file_or_an_unasked_report_fails_the_ledger(media_root):
    failed = ReportFactory(status="failed")
    stored(failed, b"partial\n")
    with pytest.raises(AssertionError):
        check_ledger([str(failed.pk)], media_root, timeout=1)
    owner = UserFactory()
    asked = ReportFactory(user=owner, status="cancelled")
    ReportFactory(user=owner, status="cancelled")  # nobody asked for this one
    with pytest.raises(AssertionError, match="nobody asked for"):
        check_ledger([str(asked.pk)], media_root, user=owner, timeout=1)
