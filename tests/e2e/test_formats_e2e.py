"""Every format, compressed or not, built by a real worker and read back by its own reader.

The ``charted`` test generator has typed cells (dates, decimals, a formula-looking
string, unicode) and charts over its rows and its summary. Then the same over
S3: a worker whose storage is a private bucket on a real S3 server (moto in
server mode on loopback), downloads answered with a presigned redirect.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zipfile
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.conftest import stored_files
from tests.s3_server import (
    S3_CREDENTIALS,
    create_private_bucket,
    list_keys,
    s3_storage_settings,
)
from tests.worker import celery_worker, purge_queues

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FORMATS = ["csv", "xlsx", "json", "ndjson", "pdf"]
REGIONS = ["north", "south", "east"]


def read_rows(fmt: str, data: bytes) -> list[list]:
    """The data rows of a downloaded file, opened by the library that reads the format."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        assert rows[0] == ["region", "day", "orders", "revenue", "note"]
        return rows[1:]
    if fmt == "json":
        return [list(item.values()) for item in json.loads(data)]
    if fmt == "ndjson":
        return [list(json.loads(line).values()) for line in data.decode().splitlines()]
    if fmt == "xlsx":
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        sheet = book["Report"]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert rows[0] == ["region", "day", "orders", "revenue", "note"]
        return rows[1:]
    raise AssertionError(fmt)


def check_file(fmt: str, data: bytes) -> None:
    if fmt == "pdf":
        from pypdf import PdfReader

        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
        for expected in ("Charted sales", "north", "1,334.49", "Revenue per region"):
            assert expected in text, (expected, text[:2000])
        return
    rows = read_rows(fmt, data)
    assert [r[0] for r in rows] == REGIONS
    revenue = [r[3] for r in rows]
    if fmt == "xlsx":
        # Native numbers and dates, and the formula neutralised as in CSV.
        assert revenue == [1234.5, 99.99, 0]
        assert rows[0][1].date().isoformat() == "2026-01-05"
        assert rows[0][4] == "'=SUM(A1:A2)"
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 3
    elif fmt == "csv":
        assert revenue == ["1234.50", "99.99", "0.00"]
        assert rows[0][4] == "'=SUM(A1:A2)"
        assert rows[1][4] == "Zoë"
    else:
        # JSON keeps decimals exact (strings), dates ISO, and text as it is.
        assert [Decimal(v) for v in revenue] == [Decimal("1234.50"), Decimal("99.99"), 0]
        assert rows[0][1] == "2026-01-05"
        assert rows[0][4] == "=SUM(A1:A2)"
        assert rows[1][4] == "Zoë"


def check_result(report: dict, body: bytes, fmt: str, compress: bool) -> bytes:
    """The recorded size and checksum are the downloaded bytes'; return them uncompressed."""
    result = report["result_data"]
    assert result["format"] == fmt
    assert result["compressed"] is compress
    assert result["file_size"] == len(body)
    assert result["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert result["row_count"] == 3
    assert result["summary"]["total_revenue"] == "1334.49"
    if compress:
        data = gzip.decompress(body)
        assert result["uncompressed_size"] == len(data)
        return data
    return body


def test_every_format_compressed_or_not_on_the_local_storage(worker, alice, media_root):
    created = {}
    for fmt in FORMATS:
        for compress in (False, True):
            report = alice.create(
                report_type="charted", title="Charted sales", format=fmt, compress=compress
            )
            assert (report["format"], report["compress"]) == (fmt, compress)
            created[fmt, compress] = report["id"]
    for (fmt, compress), rid in created.items():
        report = alice.wait_finished(rid)
        assert report["status"] == "completed", report
        response = alice.get(f"{rid}/download/")
        assert response.status_code == 200, response.text
        name = response.headers["Content-Disposition"].split("filename=")[1].strip('"')
        extension = {"csv": "csv", "xlsx": "xlsx", "json": "json", "ndjson": "ndjson"}.get(
            fmt, "pdf"
        )
        assert name == f"charted-sales.{extension}" + (".gz" if compress else "")
        if compress:
            assert response.headers["Content-Type"] == "application/gzip"
        data = check_result(report, response.content, fmt, compress)
        check_file(fmt, data)
        # Only the final file is left in storage: the uncompressed one is gone.
        assert [p.name for p in stored_files(media_root, rid)] == [name]


def test_s3_round_trip_with_presigned_redirect(
    workers, s3_endpoint, alice, bob, settings, django_db_blocker
):
    bucket = create_private_bucket(s3_endpoint)
    # A secret of its own, to show it never appears in the URLs handed out.
    alias = s3_storage_settings(s3_endpoint, bucket, secret_key="never-in-a-url-0123456789")
    # The web side (live_server runs in this process) and the worker use the bucket.
    settings.STORAGES = {**settings.STORAGES, "s3": alias}
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE": "s3"}
    env = {
        "ASYNC_REPORTS_TEST_S3_STORAGE": json.dumps(alias),
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps({"STORAGE": "s3"}),
    }
    with django_db_blocker.unblock():
        workers.stop()  # the shared worker writes to the local disk
        purge_queues()
    with celery_worker(concurrency=2, name="s3", env=env):
        reports = {
            (fmt, compress): alice.create(
                report_type="charted", title="Charted sales", format=fmt, compress=compress
            )["id"]
            for fmt, compress in [("xlsx", True), ("csv", False), ("pdf", False)]
        }
        for (fmt, compress), rid in reports.items():
            report = alice.wait_finished(rid)
            assert report["status"] == "completed", report
            extension = fmt + (".gz" if compress else "")
            key = f"reports/{alice.user.pk}/{rid}/1/charted-sales.{extension}"  # attempt 1
            assert key in list_keys(s3_endpoint, bucket)

            # Another user is refused before any URL is minted.
            assert bob.get(f"{rid}/download/", allow_redirects=False).status_code == 404
            response = alice.get(f"{rid}/download/", allow_redirects=False)
            assert response.status_code == 302, response.text
            assert response.headers["Cache-Control"] == "no-store"
            location = response.headers["Location"]
            assert location.startswith(f"{s3_endpoint}/{bucket}/{key}?")
            query = parse_qs(urlsplit(location).query)
            assert query["X-Amz-Expires"] == ["300"]
            assert "X-Amz-Signature" in query
            assert "never-in-a-url" not in location
            assert f"Credential={S3_CREDENTIALS['access_key']}%2F" in location

            fetched = requests.get(location, timeout=10)
            assert fetched.status_code == 200
            assert "attachment" in fetched.headers["Content-Disposition"]
            data = check_result(report, fetched.content, fmt, compress)
            check_file(fmt, data)
            # The bucket is private: the same object without a signature is refused.
            assert requests.get(f"{s3_endpoint}/{bucket}/{key}", timeout=10).status_code == 403

        # Nothing but the final files: compressed reports left no uncompressed copy.
        assert len(list_keys(s3_endpoint, bucket, "reports/")) == len(reports)
