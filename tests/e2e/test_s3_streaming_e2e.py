"""A real worker uploads CSV reports to S3 (moto on loopback) as it writes them.

Parts of 5 MiB (S3's minimum, which moto enforces): a ~12 MB report goes up in
three parts, gzip made in the stream, and the recorded checksum is the stored
object's. A report cancelled mid-upload leaves no object and no incomplete upload.
"""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
import requests

from tests.e2e.conftest import wait_for
from tests.s3_server import create_private_bucket, list_keys, s3_client, s3_storage_settings
from tests.worker import celery_worker, purge_queues

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PART = 5 * 1024 * 1024
WIDE = "x" * 1000


@pytest.fixture
def s3_worker(workers, s3_endpoint, settings, django_db_blocker):
    """A worker whose report storage is a fresh private bucket; yields the bucket."""
    bucket = create_private_bucket(s3_endpoint)
    alias = s3_storage_settings(s3_endpoint, bucket)
    settings.STORAGES = {**settings.STORAGES, "s3": alias}
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE": "s3", "S3_PART_SIZE": PART}
    env = {
        "ASYNC_REPORTS_TEST_S3_STORAGE": json.dumps(alias),
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps({"STORAGE": "s3", "S3_PART_SIZE": PART}),
    }
    with django_db_blocker.unblock():
        workers.stop()  # the shared worker writes to the local disk
        purge_queues()
    with celery_worker(concurrency=2, name="s3-stream", env=env):
        yield bucket


def test_csv_reports_are_streamed_to_s3_in_parts(s3_worker, s3_endpoint, alice):
    bucket = s3_worker
    client = s3_client(s3_endpoint)
    params = {"count": 12_000, "text": WIDE}
    ids = {
        compress: alice.create(
            report_type="paced", title="Wide", format="csv", compress=compress, parameters=params
        )["id"]
        for compress in (False, True)
    }
    bodies = {}
    for compress, rid in ids.items():
        report = alice.wait_finished(rid, timeout=90)
        assert report["status"] == "completed", report
        key = f"reports/{alice.user.pk}/{rid}/1/wide.csv" + (".gz" if compress else "")
        assert list_keys(s3_endpoint, bucket, f"reports/{alice.user.pk}/{rid}/") == [key]
        head = client.head_object(Bucket=bucket, Key=key)
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        result = report["result_data"]
        assert result["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
        assert (result["file_size"], result["compressed"]) == (len(body), compress)
        assert "streamed_file" not in result
        if compress:
            bodies[compress] = gzip.decompress(body)
            assert result["uncompressed_size"] == len(bodies[compress])
        else:
            bodies[compress] = body
            assert head["ETag"].endswith('-3"'), head["ETag"]  # three parts of 5 MiB
        # The download serves the stored bytes.
        response = alice.get(f"{rid}/download/", allow_redirects=False)
        assert response.status_code == 302, response.text
        assert requests.get(response.headers["Location"], timeout=30).content == body
    assert bodies[True] == bodies[False]
    assert bodies[False].split(b"\r\n")[12_000].startswith(b"12000,144000000,")
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_cancel_mid_upload_aborts_it(s3_worker, s3_endpoint, alice):
    bucket = s3_worker
    client = s3_client(s3_endpoint)
    rid = alice.create(
        report_type="paced",
        title="Slow",
        format="csv",
        parameters={"count": 40_000, "text": WIDE, "delay": 0.0005},
    )["id"]
    # 30 %: 12,000 rows written, two parts of 5 MiB uploaded.
    alice.wait_processing(rid, min_progress=30, timeout=60)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert alice.post(f"{rid}/cancel/").status_code == 200

    wait_for(
        lambda: not client.list_multipart_uploads(Bucket=bucket).get("Uploads", []),
        timeout=30,
        message="the upload to be aborted",
    )
    assert alice.detail(rid)["status"] == "cancelled"
    assert list_keys(s3_endpoint, bucket) == []
