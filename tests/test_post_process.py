"""The post-processing step: gzip, size, checksum and row count of the stored file.

Reports are generated through the service path the worker runs
(``claim_report`` -> ``generate`` -> ``post_process``) on the real storage
under MEDIA_ROOT.
"""

import csv
import gzip
import hashlib
import io
import os

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from django_async_reports import services
from django_async_reports.models import Report
from django_async_reports.services import files as postprocess
from django_async_reports.services import measured_output
from django_async_reports.storage import report_storage
from tests.conftest import close_streamed_file
from tests.factories import ReportFactory

pytestmark = pytest.mark.django_db

HEADER = ["n", "square", "text"]


@pytest.fixture
def compressed_by_post_processing(monkeypatch):
    """A CSV written whole and gzipped by post-processing, as an XLSX report is (or any
    report on a storage other than the file system): local CSV is gzipped as it is written
    (tests/test_measured_output.py)."""
    monkeypatch.setattr(measured_output, "measures", lambda storage, fmt: False)


def generated(user, *, compress, count=25, title="Numbers export"):
    """A report claimed and generated, waiting for its post-processing step."""
    report = ReportFactory(
        user=user,
        title=title,
        compress=compress,
        parameters={"count": count, "delay": 0, "text": "row"},
    )
    services.generate(services.claim_report(report.pk))
    report.refresh_from_db()
    assert report.status == Report.Status.PROCESSING
    return report


def stored_bytes(name):
    with report_storage.open(name, "rb") as fh:
        return fh.read()


def folder_listing(name):
    """The files in the report's own folder on disk."""
    return sorted(os.listdir(os.path.join(settings.MEDIA_ROOT, os.path.dirname(name))))


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_csv(data):
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


class TestUncompressed:
    def test_result_data_describes_the_stored_bytes(self, user):
        report = generated(user, compress=False)
        name = report.result_file.name
        assert name.endswith("/numbers-export.csv")

        done = services.post_process(report.pk)

        assert done is not None
        assert done.status == Report.Status.COMPLETED
        assert done.progress == 100
        assert done.result_file.name == name  # not renamed, not copied
        content = stored_bytes(name)
        rows = parse_csv(content)
        assert rows[0] == HEADER
        assert len(rows) == 26
        assert rows[25] == ["25", "625", "row"]
        assert done.result_data == {
            "format": "csv",
            "row_count": 25,
            "columns": HEADER,
            "file_size": len(content),
            "checksum": sha256(content),
            "compressed": False,
        }
        assert folder_listing(name) == ["numbers-export.csv"]

    def test_expiry_is_set_when_completed(self, user):
        report = generated(user, compress=False)
        done = services.post_process(report.pk)
        assert done.completed_at is not None
        assert done.expires_at == services.expiry_for("numbers", done.completed_at)


@pytest.mark.usefixtures("compressed_by_post_processing")
class TestCompressed:
    def test_gzip_replaces_the_original(self, user):
        report = generated(user, compress=True, count=40)
        original = report.result_file.name
        raw = stored_bytes(original)

        done = services.post_process(report.pk)

        assert done.status == Report.Status.COMPLETED
        name = done.result_file.name
        assert name == original + ".gz"
        assert name.endswith("/numbers-export.csv.gz")
        gz = stored_bytes(name)
        assert gz[:2] == b"\x1f\x8b"  # the gzip magic number
        assert gzip.decompress(gz) == raw
        rows = parse_csv(gzip.decompress(gz))
        assert rows[0] == HEADER
        assert len(rows) - 1 == 40
        assert rows[1] == ["1", "1", "row"] and rows[40] == ["40", "1600", "row"]
        assert done.result_data["compressed"] is True
        assert done.result_data["file_size"] == len(gz)
        assert done.result_data["uncompressed_size"] == len(raw)
        assert done.result_data["checksum"] == sha256(gz)  # of what is stored and served
        assert done.result_data["checksum"] != sha256(raw)
        assert done.result_data["row_count"] == 40
        assert done.result_data["format"] == "csv"
        assert len(gz) < len(raw)
        # The uncompressed original is gone: only the .gz is left in the folder.
        assert not report_storage.exists(original)
        assert folder_listing(name) == ["numbers-export.csv.gz"]

    def test_gzip_header_names_the_inner_file_and_has_no_timestamp(self, user):
        report = generated(user, compress=True)
        gz = stored_bytes(services.post_process(report.pk).result_file.name)
        flags = gz[3]
        assert flags & 0x08  # FNAME: gunzip restores the name
        assert gz[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
        assert gz[10:].split(b"\x00", 1)[0] == b"numbers-export.csv"

    def test_post_process_run_twice_is_idempotent(self, user):
        report = generated(user, compress=True)
        first = services.post_process(report.pk)
        name = first.result_file.name
        gz = stored_bytes(name)

        # A retried or redelivered step finds the report completed.
        assert services.post_process(report.pk) is None

        report.refresh_from_db()
        assert report.status == Report.Status.COMPLETED
        assert report.result_file.name == name
        assert report.result_data == first.result_data
        assert report.completed_at == first.completed_at
        assert stored_bytes(name) == gz
        assert folder_listing(name) == ["numbers-export.csv.gz"]

    def test_retry_after_a_crash_between_copy_and_update_leaves_one_file(self, user):
        # The first attempt stored the .gz copy and died before the row was
        # updated: the retry replaces that copy instead of storing a second one.
        report = generated(user, compress=True)
        original = report.result_file.name
        left_over = postprocess.compress(report_storage, original)
        assert left_over.name == original + ".gz"
        assert folder_listing(original) == ["numbers-export.csv", "numbers-export.csv.gz"]

        done = services.post_process(report.pk)

        assert done.result_file.name == original + ".gz"
        assert folder_listing(original) == ["numbers-export.csv.gz"]
        assert done.result_data["checksum"] == left_over.checksum
        assert done.result_data["file_size"] == left_over.size

    def test_cancelled_while_compressing_leaves_no_file(self, user, monkeypatch):
        report = generated(user, compress=True)
        original = report.result_file.name
        real_compress = postprocess.compress

        def compress_then_cancel(storage, name):
            stored = real_compress(storage, name)
            Report.objects.filter(pk=report.pk).update(status=Report.Status.CANCELLED)
            return stored

        monkeypatch.setattr(postprocess, "compress", compress_then_cancel)

        assert services.post_process(report.pk) is None

        report.refresh_from_db()
        assert report.status == Report.Status.CANCELLED
        assert not report_storage.exists(original)
        assert not report_storage.exists(original + ".gz")
        assert folder_listing(original) == []

    @pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
    def test_duplicate_run_finishing_first_keeps_the_reports_file(
        self, user, monkeypatch, compress
    ):
        # A redelivered message runs the step twice at once: the run that
        # loses the race must not delete the file the winner completed with.
        report = generated(user, compress=compress)
        step = "compress" if compress else "measure"
        real = getattr(postprocess, step)
        calls = []

        def racing(storage, name):
            stored = real(storage, name)
            calls.append(name)
            if len(calls) == 1:
                assert services.post_process(report.pk) is not None  # the duplicate wins
            return stored

        monkeypatch.setattr(postprocess, step, racing)

        assert services.post_process(report.pk) is None  # the loser

        assert len(calls) == 2
        report.refresh_from_db()
        assert report.status == Report.Status.COMPLETED
        name = report.result_file.name
        assert name.endswith(".csv.gz" if compress else ".csv")
        content = stored_bytes(name)
        assert report.result_data["checksum"] == sha256(content)
        assert folder_listing(name) == [os.path.basename(name)]

    def test_same_content_compresses_to_identical_bytes(self, user):
        # Two reports with the same title and rows: two folders, the same bytes.
        first = services.post_process(generated(user, compress=True).pk)
        second = services.post_process(generated(user, compress=True).pk)
        assert first.result_file.name != second.result_file.name
        first_gz = stored_bytes(first.result_file.name)
        assert first_gz == stored_bytes(second.result_file.name)
        assert first.result_data["checksum"] == second.result_data["checksum"] == sha256(first_gz)

    def test_compressing_again_later_gives_identical_bytes(self, monkeypatch):
        # mtime=0: the clock never reaches the header.
        name = report_storage.save("reports/x/data.csv", ContentFile(b"a,b\n1,2\n" * 1000))
        monkeypatch.setattr(gzip.time, "time", lambda: 1_000_000_000.0)
        first = postprocess.compress(report_storage, name)
        first_gz = stored_bytes(first.name)
        monkeypatch.setattr(gzip.time, "time", lambda: 2_000_000_000.0)
        second = postprocess.compress(report_storage, name)
        assert second.name == first.name == name + ".gz"  # replaced, not stored beside
        assert stored_bytes(second.name) == first_gz
        assert second.checksum == first.checksum == sha256(first_gz)

    def test_files_larger_than_a_block(self):
        # Several BLOCK_SIZE reads: sizes and checksum still cover every byte.
        line = b"".join(b"%d,%d,some text\n" % (n, n * n) for n in range(1000))
        data = line * 200
        assert len(data) > 2 * postprocess.BLOCK_SIZE
        name = report_storage.save("reports/x/big.csv", ContentFile(data))

        measured = postprocess.measure(report_storage, name)
        assert (measured.size, measured.uncompressed_size) == (len(data), len(data))
        assert measured.checksum == sha256(data)
        assert measured.name == name

        stored = postprocess.compress(report_storage, name)
        gz = stored_bytes(stored.name)
        assert gzip.decompress(gz) == data
        assert stored.size == len(gz)
        assert stored.uncompressed_size == len(data)
        assert stored.checksum == sha256(gz)
        assert report_storage.exists(name)  # the caller deletes the original


class TestDownload:
    def test_compressed_report_downloads_as_gzip(self, auth_client, user):
        report = generated(user, compress=True, count=3)
        services.post_process(report.pk)

        response = auth_client.get(f"/api/v1/reports/{report.pk}/download/")

        assert response.status_code == 200
        body = b"".join(response.streaming_content)
        close_streamed_file(response)
        assert response["Content-Disposition"].startswith("attachment; filename=")
        assert response["Content-Disposition"].endswith('.csv.gz"')
        assert parse_csv(gzip.decompress(body)) == [
            HEADER,
            ["1", "1", "row"],
            ["2", "4", "row"],
            ["3", "9", "row"],
        ]
        assert response["Content-Type"] == "application/gzip"

    def test_uncompressed_report_downloads_as_csv(self, auth_client, user):
        report = generated(user, compress=False, count=2)
        services.post_process(report.pk)

        response = auth_client.get(f"/api/v1/reports/{report.pk}/download/")

        assert response.status_code == 200
        body = b"".join(response.streaming_content)
        close_streamed_file(response)
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].endswith('.csv"')
        assert parse_csv(body) == [HEADER, ["1", "1", "row"], ["2", "4", "row"]]


class TestDuplicatesAndLeftovers:
    """A redelivered step running beside (or after) another never removes the report's file."""

    @pytest.mark.usefixtures("compressed_by_post_processing")
    def test_compress_keeps_an_identical_copy_already_there(self, user):
        report = generated(user, compress=True)
        original = report.result_file.name
        done = services.post_process(report.pk)
        completed_bytes = stored_bytes(done.result_file.name)
        # A duplicate run that read the original before the first one deleted it.
        report_storage.save(original, ContentFile(gzip.decompress(completed_bytes)))

        again = postprocess.compress(report_storage, original)

        assert again.name == done.result_file.name  # kept, neither deleted nor renamed
        assert stored_bytes(done.result_file.name) == completed_bytes
        assert again.checksum == done.result_data["checksum"]

    def test_a_partial_copy_is_left_alone_then_swept_once_completed(self, user):
        report = generated(user, compress=True)
        original = report.result_file.name
        report_storage.save(original + ".gz", ContentFile(b"\x1f\x8b half an upload"))

        done = services.post_process(report.pk)

        assert done.status == Report.Status.COMPLETED
        assert done.result_file.name != original + ".gz"
        data = gzip.decompress(stored_bytes(done.result_file.name))
        assert len(parse_csv(data)) == 26  # header + 25 rows
        # Only the report's file is left in its folder.
        assert folder_listing(original) == [done.result_file.name.rsplit("/", 1)[-1]]

    def test_failing_a_report_sweeps_its_folder(self, user):
        report = generated(user, compress=True)
        original = report.result_file.name
        # A post-processing attempt stored its copy, then the report failed.
        report_storage.save(original + ".gz", ContentFile(b"a copy the row never pointed at"))

        services.fail_report(report.pk, "Timeout")

        assert not os.path.exists(os.path.join(settings.MEDIA_ROOT, os.path.dirname(original)))
