"""Reports uploaded to S3 as they are written (services.s3_stream), against a real moto server.

The streamed object must be the very bytes the temporary-file path stores, its
recorded size and checksum the object's; an error or a cancel aborts the
multipart upload; no temporary file is made. moto enforces S3's 5 MiB minimum
part size (EntityTooSmall), so the multipart tests write more than 10 MiB.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import uuid
from datetime import timedelta

import pytest
from django.core.files.storage import FileSystemStorage

from django_async_reports import services
from django_async_reports.checks import check_settings
from django_async_reports.exceptions import ReportCancelled
from django_async_reports.models import Report
from django_async_reports.services import s3_stream
from django_async_reports.storage import report_file_name, report_storage
from tests.factories import ReportFactory
from tests.s3_server import list_keys, s3_client
from tests.testapp.reports import PacedReport

pytestmark = pytest.mark.django_db

PART = s3_stream.MIN_PART_SIZE
WIDE = "x" * 1000  # a ~1 KB row: 12,000 rows make three parts of 5 MiB


def set_reports(settings, **values):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **values}


def run(user, *, fmt="csv", compress=False, title="Sales", **parameters) -> Report:
    """Claim, generate and post-process one ``paced`` report; return it completed."""
    parameters = {"count": 50, "delay": 0.0, "text": 'a,b "c" é', **parameters}
    report = ReportFactory(
        user=user,
        report_type="paced",
        title=title,
        format=fmt,
        compress=compress,
        parameters=parameters,
    )
    claimed = services.claim_report(report.pk)
    services.generate(claimed)
    services.post_process(report.pk)
    report.refresh_from_db()
    assert report.status == Report.Status.COMPLETED, report.error_message
    return report


def object_bytes(endpoint, bucket, name) -> bytes:
    return s3_client(endpoint).get_object(Bucket=bucket, Key=name)["Body"].read()


def pending(endpoint, bucket) -> list[dict]:
    return s3_client(endpoint).list_multipart_uploads(Bucket=bucket).get("Uploads", [])


@pytest.fixture
def aborted(monkeypatch):
    """Upload ids ``MultipartUpload.abort`` was called with (None: nothing was started)."""
    calls: list[str | None] = []
    original = s3_stream.MultipartUpload.abort

    def recording(self):
        calls.append(self.upload_id)
        original(self)

    monkeypatch.setattr(s3_stream.MultipartUpload, "abort", recording)
    return calls


# -- when it applies -----------------------------------------------------------------
def test_streams_on_s3_for_the_append_only_formats(settings, s3_reports):
    assert [
        f for f in ("csv", "json", "ndjson", "xlsx", "pdf") if s3_stream.streams(report_storage, f)
    ] == [
        "csv",
        "json",
        "ndjson",
    ]
    set_reports(settings, S3_STREAMING=False)
    assert not s3_stream.streams(report_storage, "csv")


def test_never_streams_on_the_file_system():
    assert not s3_stream.streams(FileSystemStorage(location=tempfile.gettempdir()), "csv")
    assert not s3_stream.streams(report_storage, "csv")  # the test settings' local storage


# -- same bytes as the temporary-file path ---------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "compress"),
    [("csv", False), ("ndjson", False), ("json", False), ("csv", True), ("ndjson", True)],
)
def test_the_stored_object_is_the_temp_file_paths_bytes(
    settings, user, s3_endpoint, s3_reports, fmt, compress
):
    set_reports(settings, S3_STREAMING=False)
    before = run(user, fmt=fmt, compress=compress)
    set_reports(settings, S3_STREAMING=True)
    after = run(user, fmt=fmt, compress=compress)

    expected = object_bytes(s3_endpoint, s3_reports, before.result_file.name)
    body = object_bytes(s3_endpoint, s3_reports, after.result_file.name)
    assert body == expected
    assert after.result_file.name.endswith(f"/sales.{fmt}" + (".gz" if compress else ""))
    # Recorded as the temporary-file path records it, checksum of the stored bytes included.
    assert after.result_data == before.result_data
    assert after.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert after.result_data["file_size"] == len(body)
    if compress:
        assert after.result_data["uncompressed_size"] == len(gzip.decompress(body))
    # One object per report, its final one: no uncompressed original left beside it.
    assert list_keys(s3_endpoint, s3_reports, f"reports/{user.pk}/{after.pk}/") == [
        after.result_file.name
    ]
    assert pending(s3_endpoint, s3_reports) == []


def test_object_parameters_and_acl_are_the_storages(settings, user, s3_endpoint, s3_bucket):
    from tests.s3_server import use_s3

    use_s3(
        settings,
        s3_endpoint,
        s3_bucket,
        object_parameters={
            "ContentType": "application/octet-stream",
            "ServerSideEncryption": "AES256",
        },
        location="media",
    )
    set_reports(settings, S3_PART_SIZE=PART)
    report = run(user, count=12_000, text=WIDE, compress=False)

    key = f"media/{report.result_file.name}"
    head = s3_client(s3_endpoint).head_object(Bucket=s3_bucket, Key=key)
    assert head["ContentType"] == "application/octet-stream"
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ETag"].endswith('-3"')  # a multipart upload, with the storage's parameters


# -- parts, memory and disk ------------------------------------------------------------
def test_a_large_report_is_uploaded_in_parts(settings, user, s3_endpoint, s3_reports):
    set_reports(settings, S3_PART_SIZE=PART)
    report = run(user, count=12_000, text=WIDE)

    head = s3_client(s3_endpoint).head_object(Bucket=s3_reports, Key=report.result_file.name)
    assert head["ContentLength"] > 2 * PART
    assert head["ETag"].endswith('-3"'), head["ETag"]  # S3's ETag of a three-part upload
    body = object_bytes(s3_endpoint, s3_reports, report.result_file.name)
    assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    lines = body.split(b"\r\n")
    assert lines[0] == b"n,square,text" and lines[12_000].startswith(b"12000,144000000,")


def test_a_small_report_is_one_put(settings, user, s3_endpoint, s3_reports):
    report = run(user, count=3)
    head = s3_client(s3_endpoint).head_object(Bucket=s3_reports, Key=report.result_file.name)
    assert "-" not in head["ETag"]


def test_an_empty_report_is_stored(settings, user, s3_endpoint, s3_reports):
    report = run(user, fmt="ndjson", count=0)
    assert object_bytes(s3_endpoint, s3_reports, report.result_file.name) == b""
    assert report.result_data["file_size"] == 0


def test_no_temporary_file_and_no_read_back(settings, monkeypatch, user, s3_endpoint, s3_reports):
    def refused(*args, **kwargs):
        raise AssertionError("no local file may be made for a streamed report")

    # Generation's TemporaryFile, and the SpooledTemporaryFile django-storages would
    # download into if post-processing read the object back to measure it.
    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refused)
    set_reports(settings, S3_PART_SIZE=PART)

    report = run(user, count=12_000, text=WIDE, compress=True)

    body = object_bytes(s3_endpoint, s3_reports, report.result_file.name)
    assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert report.result_data["uncompressed_size"] > 2 * PART


# -- errors and cancels abort ------------------------------------------------------------
def test_a_generator_failing_midway_aborts_the_upload(
    settings, monkeypatch, user, s3_endpoint, s3_reports, aborted
):
    def rows_then_boom(self, params):
        for n in range(12_000):
            yield (n, n * n, WIDE)
        raise ConnectionError("the data source went away")

    monkeypatch.setattr(PacedReport, "rows", rows_then_boom)
    set_reports(settings, S3_PART_SIZE=PART)
    report = ReportFactory(user=user, report_type="paced", parameters={"count": 12_000})
    claimed = services.claim_report(report.pk)

    with pytest.raises(ConnectionError):
        services.generate(claimed)

    assert len(aborted) == 1 and aborted[0] is not None  # two parts were up when it failed
    assert pending(s3_endpoint, s3_reports) == []
    assert list_keys(s3_endpoint, s3_reports) == []


def test_a_cancel_aborts_the_upload(settings, user, s3_endpoint, s3_reports, aborted):
    set_reports(settings, S3_PART_SIZE=PART, CANCEL_CHECK_INTERVAL=0, PROGRESS_INTERVAL=0)
    report = ReportFactory(
        user=user, report_type="paced", parameters={"count": 30_000, "text": WIDE}
    )
    claimed = services.claim_report(report.pk)

    def cancel_after_a_part(pct, msg):
        if pct >= 40:  # 12,000 rows: two parts are up
            Report.objects.filter(pk=report.pk).update(status=Report.Status.CANCELLED)

    with pytest.raises(ReportCancelled):
        services.generate(claimed, task_state=cancel_after_a_part)

    assert len(aborted) == 1 and aborted[0] is not None
    assert pending(s3_endpoint, s3_reports) == []
    assert list_keys(s3_endpoint, s3_reports) == []


def test_a_redelivered_run_stores_one_object_and_the_dead_runs_upload_is_aborted(
    user, s3_endpoint, s3_reports
):
    client = s3_client(s3_endpoint)
    report = ReportFactory(user=user, report_type="paced", title="Sales", parameters={"count": 5})
    first = services.claim_report(report.pk, task_id="message")
    # The first run's worker is killed (SIGKILL) mid-upload: nothing aborts its upload.
    dead_key = report_file_name(user.pk, report.pk, "Sales", "csv", attempt=first.attempt)
    dead = client.create_multipart_upload(Bucket=s3_reports, Key=dead_key)["UploadId"]
    client.upload_part(Bucket=s3_reports, Key=dead_key, UploadId=dead, PartNumber=1, Body=b"n")

    second = services.claim_report(report.pk, redelivered=True, task_id="message")
    services.generate(second)
    services.post_process(report.pk)

    report.refresh_from_db()
    assert report.status == Report.Status.COMPLETED
    assert report.result_file.name.endswith(f"/{report.pk}/2/sales.csv")
    assert list_keys(s3_endpoint, s3_reports) == [report.result_file.name]  # one object
    assert [u["UploadId"] for u in pending(s3_endpoint, s3_reports)] == [dead]
    swept = services.sweep_orphan_files(delete=True, grace_seconds=0)
    assert (swept.stale_uploads, swept.aborted_uploads) == ([dead_key], 1)
    assert pending(s3_endpoint, s3_reports) == []
    assert list_keys(s3_endpoint, s3_reports) == [report.result_file.name]


# -- the orphan sweep aborts a dead worker's upload ------------------------------------------
def test_the_orphan_sweep_aborts_stale_uploads_only(user, s3_endpoint, s3_reports):
    client = s3_client(s3_endpoint)
    running = ReportFactory(user=user, status=Report.Status.PROCESSING, attempt=2)
    keys = {
        "dead": f"reports/{user.pk}/{uuid.uuid4()}/1/gone.csv",  # no row: a deleted report
        "stale": f"reports/{user.pk}/{running.pk}/1/old.csv",  # the attempt before this one
        "live": f"reports/{user.pk}/{running.pk}/2/now.csv",  # being written right now
        "odd": f"reports/{user.pk}/notes/upload.bin",  # outside the layout
    }
    ids = {
        label: client.create_multipart_upload(Bucket=s3_reports, Key=key)["UploadId"]
        for label, key in keys.items()
    }

    # moto dates every upload 2010-11-10 (real S3: the time it began); the grace period
    # is measured from the server's date.
    began = max(item["Initiated"] for item in pending(s3_endpoint, s3_reports))
    young = services.sweep_orphan_files(delete=True, now=began + timedelta(minutes=59))
    assert (young.stale_uploads, young.aborted_uploads) == ([], 0)

    dry = services.sweep_orphan_files(now=began + timedelta(hours=2))
    assert sorted(dry.stale_uploads) == sorted([keys["dead"], keys["stale"]])
    assert len(pending(s3_endpoint, s3_reports)) == 4

    swept = services.sweep_orphan_files(delete=True, grace_seconds=0)
    assert swept.aborted_uploads == 2
    left = {item["UploadId"] for item in pending(s3_endpoint, s3_reports)}
    assert left == {ids["live"], ids["odd"]}
    for label in ("live", "odd"):
        client.abort_multipart_upload(Bucket=s3_reports, Key=keys[label], UploadId=ids[label])


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("S3_PART_SIZE", PART - 1, "E060"),
        ("S3_PART_SIZE", 5 * 1024**3 + 1, "E060"),
        ("S3_PART_SIZE", 8.0 * 1024 * 1024, "E060"),
        ("S3_PART_SIZE", True, "E060"),
        ("S3_STREAMING", "yes", "E061"),
    ],
)
def test_checks_refuse_bad_streaming_settings(settings, name, value, check_id):
    set_reports(settings, **{name: value})
    ids = [message.id for message in check_settings()]
    assert f"django_async_reports.{check_id}" in ids


def test_the_defaults_pass_the_checks(settings):
    assert s3_stream.MIN_PART_SIZE <= 8 * 1024 * 1024
    ids = [message.id for message in check_settings()]
    assert not {"django_async_reports.E060", "django_async_reports.E061"} & set(ids)
