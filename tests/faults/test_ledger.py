"""The ledger's negative control: it sees a lost or stuck report, a wrong or extra file, a
missing or doubled e-mail or webhook, a worker process that died.

A fault case that passed because its check could not fail would prove nothing.
"""

from __future__ import annotations

import hashlib
import json
from email.message import EmailMessage

import pytest
from django.core.files.base import ContentFile

from django_async_reports.storage import report_file_name, report_storage
from tests.factories import ReportFactory, UserFactory
from tests.faults.ledger import check_deliveries, check_ledger, worker_deaths
from tests.loopback_servers import Request

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


def mail(report, msgid: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = msgid or f"<async-report-report-{report.pk}-{report.status}-1@x>"
    return message


def hook(report, message_id: str = "msg_1", event: str | None = None) -> Request:
    body = {"type": event or f"report.{report.status}", "data": {"report_id": str(report.pk)}}
    return Request("POST", "/hook", {"webhook-id": message_id}, json.dumps(body).encode())


def test_a_missing_doubled_or_unasked_delivery_fails_the_ledger():
    report = ReportFactory.build(status="failed", send_email=True, webhook_url="http://h/x")
    reports = {str(report.pk): report}
    check_deliveries(reports, [mail(report)], [hook(report)])  # one of each: good

    with pytest.raises(AssertionError, match="e-mails"):
        check_deliveries(reports, [], [hook(report)])  # the e-mail lost
    with pytest.raises(AssertionError, match="webhooks"):
        check_deliveries(reports, [mail(report)], [])  # the webhook lost
    with pytest.raises(AssertionError, match="more than once"):
        check_deliveries(reports, [mail(report), mail(report)], [hook(report)])
    # Sent again under the same id: allowed where a case says so (at least once)...
    check_deliveries(reports, [mail(report)] * 2, [hook(report)] * 2, resent=True)
    # ...never under a second id, nor with another outcome than the report's.
    with pytest.raises(AssertionError):
        check_deliveries(
            reports,
            [mail(report), mail(report, f"<async-report-report-{report.pk}-failed-2@x>")],
            [hook(report)],
            resent=True,
        )
    with pytest.raises(AssertionError):
        check_deliveries(reports, [mail(report)], [hook(report, event="report.completed")])

    quiet = ReportFactory.build(status="cancelled", send_email=True, webhook_url="")
    with pytest.raises(AssertionError, match="e-mails"):  # a cancelled report mails nobody
        check_deliveries({str(quiet.pk): quiet}, [mail(quiet)], [])


def test_a_worker_process_that_died_is_seen_in_its_log():
    log = (
        b"[... INFO/MainProcess] Task x received\n"
        b"[... ERROR/MainProcess] Process 'ForkPoolWorker-2' pid:42 "
        b"exited with 'signal 9 (SIGKILL)'\n"
        b"billiard.exceptions.WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL)\n"
    )
    assert len(worker_deaths(log)) == 2
    assert worker_deaths(b"[... INFO/MainProcess] Task x succeeded\n") == []
