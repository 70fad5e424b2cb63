"""A report's life over HTTP on a real worker: create, follow, download, regenerate, e-mail."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import time
import uuid
from decimal import Decimal

import pytest
from django.template.defaultfilters import floatformat

from django_async_reports.models import Report
from tests.e2e.conftest import FINISHED, parse_dt, stored_files, wait_for
from tests.factories import SaleFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPRESENTATION_KEYS = {
    "id",
    "report_type",
    "report_type_label",
    "title",
    "parameters",
    "status",
    "priority",
    "format",
    "compress",
    "progress",
    "progress_message",
    "result_data",
    "error_message",
    "retry_count",
    "send_email",
    "webhook_url",
    "webhook_secret",
    "celery_task_id",
    "started_at",
    "completed_at",
    "expires_at",
    "expired",
    "created_at",
    "updated_at",
    "progress_url",
    "download_url",
}


def csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def test_create_follow_and_download(worker, alice, media_root):
    text = 'Total, "net"'
    count = 40
    response = alice.post(
        json={
            "report_type": "numbers",
            "title": '../Q4 Sales: "Final" / 2024',
            "priority": "high",
            "parameters": {"count": count, "delay": 0.05, "text": text},
        }
    )

    # 201 with the full representation of a pending report.
    assert response.status_code == 201, response.text
    created = response.json()
    # The create answer also says whether the report was created, reused or joined.
    assert set(created) == REPRESENTATION_KEYS | {"outcome"}
    assert created["outcome"] == "created"
    assert (created["format"], created["compress"], created["expired"]) == ("csv", False, False)
    rid = created["id"]
    assert str(uuid.UUID(rid)) == rid
    assert response.headers["Location"].endswith(f"/api/v1/reports/{rid}/")
    assert created["report_type"] == "numbers"
    assert created["report_type_label"] == "Numbers"
    assert created["title"] == '../Q4 Sales: "Final" / 2024'
    assert created["priority"] == "high"
    assert created["parameters"] == {"count": count, "delay": 0.05, "text": text}
    assert created["status"] == "pending"
    assert created["progress"] == 0
    assert created["result_data"] == {}
    assert created["download_url"] is None
    assert created["progress_url"].endswith(f"/api/v1/reports/{rid}/progress/")
    assert created["celery_task_id"]
    assert Report.objects.get(pk=rid).user == alice.user

    # Nothing to download before completion.
    early = alice.get(f"{rid}/download/")
    assert early.status_code == 404, early.text

    # Follow the progress until completion: it never goes down.
    polls = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = alice.progress(rid)
        assert data["id"] == rid
        polls.append(data)
        if data["status"] in FINISHED:
            break
        if data["status"] == "processing" and len(polls) % 10 == 0:
            # 404 while running; it may complete between the two requests.
            during = alice.get(f"{rid}/download/")
            assert during.status_code == 404 or alice.detail(rid)["status"] == "completed"
        time.sleep(0.05)
    final = polls[-1]
    assert final["status"] == "completed", polls[-5:]
    values = [p["progress"] for p in polls]
    assert values == sorted(values), values
    assert any(p["status"] == "processing" and 0 < p["progress"] < 100 for p in polls), values
    assert final["progress"] == 100
    assert final["message"] == "Completed"
    started, completed = parse_dt(final["started_at"]), parse_dt(final["completed_at"])
    assert started is not None and completed is not None and started <= completed
    assert parse_dt(final["updated_at"]) >= started

    # The download: an attachment with a safe name and exactly the generated rows.
    download = alice.get(f"{rid}/download/")
    assert download.status_code == 200, download.text
    disposition = 'attachment; filename="q4-sales-final-2024.csv"'
    assert download.headers["Content-Disposition"] == disposition
    assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = [(n, n * n, text) for n in range(1, count + 1)]
    expected = csv_bytes([("n", "square", "text"), *rows])
    assert download.content == expected

    # The detail: row count, size and a checksum matching the downloaded bytes.
    detail = alice.detail(rid)
    assert detail["status"] == "completed"
    assert detail["progress"] == 100
    assert detail["error_message"] == ""
    assert detail["retry_count"] == 0
    result = detail["result_data"]
    assert result["row_count"] == count
    assert result["columns"] == ["n", "square", "text"]
    assert result["file_size"] == len(download.content)
    assert result["checksum"] == "sha256:" + hashlib.sha256(download.content).hexdigest()
    assert detail["download_url"].endswith(f"/api/v1/reports/{rid}/download/")
    assert parse_dt(detail["expires_at"]) > parse_dt(detail["completed_at"])

    # The stored file is under a server-made key, never the title.
    files = stored_files(media_root, rid)
    assert [f.relative_to(media_root).as_posix() for f in files] == [
        f"reports/{alice.user.pk}/{rid}/1/q4-sales-final-2024.csv"  # its first attempt
    ]
    assert files[0].read_bytes() == expected


def test_cancel_completed_report_is_a_conflict(worker, alice):
    rid = alice.create(report_type="numbers", parameters={"count": 2})["id"]
    assert alice.wait_finished(rid)["status"] == "completed"

    response = alice.post(f"{rid}/cancel/")

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert "completed" in body["message"] and "cannot be cancelled" in body["message"]
    assert alice.detail(rid)["status"] == "completed"
    assert alice.get(f"{rid}/download/").status_code == 200


def test_regenerate_creates_a_new_report_that_completes(worker, alice):
    params = {"count": 3, "delay": 0, "text": "again"}
    original = alice.create(
        report_type="numbers", title="Regenerate me", priority="low", parameters=params
    )
    assert alice.wait_finished(original["id"])["status"] == "completed"
    first_file = alice.get(f"{original['id']}/download/").content

    response = alice.post(f"{original['id']}/regenerate/")

    assert response.status_code == 201, response.text
    new = response.json()
    assert set(new) == REPRESENTATION_KEYS
    assert new["id"] != original["id"]
    assert new["celery_task_id"] != original["celery_task_id"]
    for field in ("report_type", "title", "parameters", "priority", "send_email"):
        assert new[field] == original[field], field
    assert new["status"] in ("pending", "processing")
    done = alice.wait_finished(new["id"])
    assert done["status"] == "completed", done["error_message"]
    assert done["result_data"]["row_count"] == 3
    assert alice.get(f"{new['id']}/download/").content == first_file
    assert alice.detail(original["id"])["status"] == "completed"
    assert Report.objects.filter(user=alice.user).count() == 2


def test_sales_report_holds_only_the_requesters_sales(worker, alice, bob):
    in_range = [
        SaleFactory(
            owner=alice.user,
            customer="Ann",
            amount=Decimal("12.34"),
            sold_on=datetime.date(2024, 12, 1),
        ),
        SaleFactory(
            owner=alice.user,
            customer="Ben, Ltd",
            amount=Decimal("0.50"),
            sold_on=datetime.date(2024, 12, 15),
        ),
        SaleFactory(
            owner=alice.user,
            customer="Cid",
            amount=Decimal("1000.00"),
            sold_on=datetime.date(2024, 12, 31),
        ),
    ]
    SaleFactory(owner=alice.user, customer="Too early", sold_on=datetime.date(2024, 11, 30))
    bobs = [
        SaleFactory(
            owner=bob.user,
            customer="Bob's client",
            amount=Decimal("99.99"),
            sold_on=datetime.date(2024, 12, 2),
        ),
        SaleFactory(owner=bob.user, customer="Bob's other", sold_on=datetime.date(2024, 12, 3)),
    ]
    params = {"start_date": "2024-12-01", "end_date": "2024-12-31"}

    alice_rid = alice.create(report_type="sales", title="December", parameters=params)["id"]
    bob_rid = bob.create(report_type="sales", title="December", parameters=params)["id"]
    alice_done = alice.wait_finished(alice_rid)
    bob_done = bob.wait_finished(bob_rid)

    assert alice_done["status"] == "completed", alice_done["error_message"]
    assert alice_done["result_data"]["row_count"] == 3
    assert alice_done["result_data"]["summary"] == {"sales": 3}
    assert alice.get(f"{alice_rid}/download/").content == csv_bytes(
        [("sale_id", "date", "customer", "amount")]
        + [(s.pk, s.sold_on.isoformat(), s.customer, s.amount) for s in in_range]
    )
    assert bob_done["status"] == "completed", bob_done["error_message"]
    assert bob_done["result_data"]["summary"] == {"sales": 2}
    assert bob.get(f"{bob_rid}/download/").content == csv_bytes(
        [("sale_id", "date", "customer", "amount")]
        + [(s.pk, s.sold_on.isoformat(), s.customer, s.amount) for s in bobs]
    )


def test_email_is_sent_once_to_the_requester(worker, alice, mailbox):
    wanted = alice.create(
        report_type="numbers", title="Monthly numbers", send_email=True, parameters={"count": 3}
    )
    assert wanted["send_email"] is True
    silent = alice.create(report_type="numbers", title="No mail please", parameters={"count": 1})
    for rid in (wanted["id"], silent["id"]):
        assert alice.wait_finished(rid)["status"] == "completed"
    # The notification step runs after completion; it claims notified_at first.
    wait_for(
        lambda: Report.objects.filter(notified_at__isnull=False).count() == 2,
        timeout=15,
        message="both notification steps",
    )
    wait_for(lambda: mailbox.messages(), timeout=15, message="the e-mail file")
    time.sleep(1.0)  # room for a duplicate to show up

    messages = mailbox.messages()
    assert len(messages) == 1, [m["Subject"] for m in messages]
    message = messages[0]
    assert message["To"] == "alice@example.com"
    assert message["From"] == "reports@example.com"
    assert message["Subject"] == 'Your report "Monthly numbers" is ready'
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Rows: 3" in body
    duration = Report.objects.get(pk=wanted["id"]).duration_seconds
    assert f"Generated in {floatformat(duration, 1)} seconds." in body
    assert f"/api/v1/reports/{wanted['id']}/download/" in body
