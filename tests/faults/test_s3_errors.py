"""S3 answering errors: when a run stores its file, and when post-processing reads it.

S3 fails with ``503 SlowDown`` (throttling) or ``500 InternalError``; botocore
retries a few times and then raises. A proxy in front of a real S3-compatible
server (moto, ``tests/s3_server.py``) answers ``503 SlowDown`` for as long as a
case says (``s3_faults.py``). A generation that cannot store its file is
retried; a finished file that post-processing cannot read is kept, and
post-processing is retried. Each case ends with the ledger, counting the
objects in the bucket.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from django_async_reports.models import Report
from tests.e2e.conftest import Workers, wait_for
from tests.faults.s3_faults import S3Faults
from tests.s3_server import create_private_bucket, s3_client, s3_server, s3_storage_settings

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# A generation's retry waits 2 s here (60 s by default).
S3_SETTINGS = {"STORAGE": "s3", "RETRY_COUNTDOWN": 2}


@pytest.fixture(scope="module")
def s3(fault_workers, fault_env, django_db_blocker):
    """A bucket behind the fault proxy, and a worker whose report storage it is."""
    from tests.faults.conftest import WORKER_SETTINGS

    with s3_server() as endpoint:
        bucket = create_private_bucket(endpoint)
        faults = S3Faults(endpoint)
        alias = s3_storage_settings(faults.endpoint, bucket)
        workers = Workers(
            {
                **fault_env,
                "ASYNC_REPORTS_TEST_S3_STORAGE": json.dumps(alias),
                "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps({**WORKER_SETTINGS, **S3_SETTINGS}),
            }
        )
        with django_db_blocker.unblock():
            fault_workers.stop()
            workers.use("faults-s3", concurrency=2)
        try:
            yield {
                "endpoint": endpoint,
                "bucket": bucket,
                "faults": faults,
                "alias": alias,
                "workers": workers,
            }
        finally:
            faults.close()
            with django_db_blocker.unblock():
                workers.stop()


@pytest.fixture
def s3_ledger(s3, ledger, settings):
    """The case's ledger, counting the bucket's objects; the web process reads the bucket too."""
    settings.STORAGES = {**settings.STORAGES, "s3": s3["alias"]}
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **S3_SETTINGS}
    s3["faults"].heal()
    client = s3_client(s3["endpoint"])  # straight to the server, not through the faults

    def objects(rid: str) -> dict[str, bytes]:
        listed = client.list_objects_v2(Bucket=s3["bucket"], Prefix="reports/")
        keys = [o["Key"] for o in listed.get("Contents", ()) if f"/{rid}/" in o["Key"]]
        return {k: client.get_object(Bucket=s3["bucket"], Key=k)["Body"].read() for k in keys}

    ledger.stored = objects
    ledger.also_watch(s3["workers"])
    return ledger


def test_s3_failing_when_the_file_is_stored_the_report_is_retried_and_completes_once(
    s3, s3_ledger, alice, notified
):
    faults = s3["faults"]
    faults.fail("PUT", "POST")  # uploads refused; reads still answer
    try:
        created = alice.create(report_type="numbers", parameters={"count": 5}, **notified)
        rid = created["id"]
        report = wait_for(
            lambda: Report.objects.filter(pk=rid, retry_count__gte=1).first(),
            timeout=60,
            message="the generation to fail on S3 and be retried",
        )
        assert report.status == "pending"  # waiting for its retry, not failed
        assert faults.refused_count("PUT") >= 1
    finally:
        faults.heal()

    reports = s3_ledger.check([rid], user=alice.user, timeout=90)
    report = reports[rid]
    assert report.status == "completed", report.error_message
    assert report.result_data["row_count"] == 5
    download = alice.get(f"{rid}/download/", allow_redirects=False)
    assert download.status_code == 302  # a presigned URL to the one stored object
    assert download.headers["Location"].split("?")[0].endswith(report.result_file.name)


def test_s3_failing_in_post_processing_keeps_the_file_and_completes(s3, s3_ledger, alice, notified):
    """Before: post-processing failed after 3 retries 10 s apart and deleted the file.

    XLSX, because CSV is gzipped while it streams to S3 and never read back:
    an XLSX file is written whole, then post-processing reads it to compress it.
    """
    faults = s3["faults"]
    faults.fail("GET")  # the generation stores its file; post-processing cannot read it
    try:
        created = alice.create(
            report_type="numbers",
            parameters={"count": 9},
            format="xlsx",
            compress=True,
            **notified,
        )
        rid = created["id"]
        # botocore's own retries give up; then the step's retry is scheduled.
        workers = s3["workers"]
        wait_for(
            lambda: any(
                "post_process_report" in line and "retry: Retry in 10s" in line
                for line in workers.log_tail(20_000).splitlines()
            ),
            timeout=60,
            message="post-processing to be retried",
        )
        assert faults.refused_count("GET") >= 3
        report = Report.objects.get(pk=rid)
        assert (report.status, report.error_message) == ("processing", "")
        assert report.result_file.name  # the generated file, kept while S3 fails
    finally:
        faults.heal()

    # Post-processing's retry (10 s later) reads it, compresses it, completes.
    reports = s3_ledger.check([rid], user=alice.user, timeout=90)
    report = reports[rid]
    assert report.status == "completed", report.error_message
    assert report.result_data["compressed"] is True
    assert report.attempt == 1  # generated once
    [content] = s3_ledger.stored(rid).values()
    assert "sha256:" + hashlib.sha256(content).hexdigest() == report.result_data["checksum"]
