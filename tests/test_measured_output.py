"""Local report files measured, and gzipped, while they are written (services.measured_output).

The stored bytes must be what post-processing made before (``files.compress``
of the plain file), the recorded size and checksum those of the stored file,
and post-processing must not read the file back.
"""

from __future__ import annotations

import gzip
import hashlib

import pytest
from django.core.files.storage import FileSystemStorage

from django_async_reports import services
from django_async_reports.models import Report
from django_async_reports.services import files, measured_output
from django_async_reports.storage import report_storage
from tests.factories import ReportFactory

pytestmark = pytest.mark.django_db


def generated(user, *, fmt="csv", compress=False, **parameters) -> Report:
    """Claim and generate one ``paced`` report; return it before post-processing."""
    parameters = {"count": 3000, "delay": 0.0, "text": 'a,b "c" é\nnext', **parameters}
    report = ReportFactory(
        user=user,
        report_type="paced",
        title="Sales",
        format=fmt,
        compress=compress,
        parameters=parameters,
    )
    services.generate(services.claim_report(report.pk))
    report.refresh_from_db()
    return report


def completed(report: Report) -> Report:
    services.post_process(report.pk)
    report.refresh_from_db()
    assert report.status == Report.Status.COMPLETED, report.error_message
    return report


def stored_bytes(report: Report) -> bytes:
    with report_storage.open(report.result_file.name, "rb") as handle:
        return handle.read()


def test_applies_to_append_only_formats_on_the_file_system(tmp_path):
    storage = FileSystemStorage(location=str(tmp_path))
    assert [
        f for f in ("csv", "json", "ndjson", "xlsx", "pdf") if measured_output.measures(storage, f)
    ] == ["csv", "json", "ndjson"]
    assert not measured_output.measures(object(), "csv")  # another storage class


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_compressed_while_written_is_what_post_processing_made(user, fmt):
    plain = completed(generated(user, fmt=fmt))
    # What post-processing made of the plain file before: a gzip copy beside it.
    copy = files.compress(report_storage, plain.result_file.name)
    with report_storage.open(copy.name, "rb") as handle:
        expected = handle.read()

    zipped = generated(user, fmt=fmt, compress=True)
    assert zipped.result_file.name.endswith(f"/sales.{fmt}.gz")  # gzipped in the stream
    report = completed(zipped)

    body = stored_bytes(report)
    assert body == expected
    assert gzip.decompress(body) == stored_bytes(plain)
    assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert report.result_data["file_size"] == len(body) == copy.size
    assert report.result_data["uncompressed_size"] == plain.result_data["file_size"]
    assert report.result_data["compressed"] is True
    assert "streamed_file" not in report.result_data


def test_post_processing_reads_nothing_back(user, monkeypatch):
    report = generated(user, compress=True)
    opened = []
    original = report_storage.open

    def recording(name, *args, **kwargs):
        opened.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(report_storage, "open", recording)
    report = completed(report)
    assert opened == []
    monkeypatch.undo()
    body = stored_bytes(report)
    assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()


def test_plain_file_is_measured_while_written(user):
    report = generated(user)
    assert report.result_data["streamed_file"]["name"] == report.result_file.name
    report = completed(report)
    body = stored_bytes(report)
    assert report.result_data["file_size"] == len(body)
    assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert report.result_data["compressed"] is False


def test_xlsx_is_still_compressed_by_post_processing(user):
    report = generated(user, fmt="xlsx", compress=True, count=20)
    assert report.result_file.name.endswith("/sales.xlsx")  # written whole, then gzipped
    assert "streamed_file" not in report.result_data
    report = completed(report)
    assert report.result_file.name.endswith("/sales.xlsx.gz")
    body = stored_bytes(report)
    assert report.result_data["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert gzip.decompress(body)[:2] == b"PK"  # the workbook inside


def test_a_text_wrapper_collected_after_its_file_closed_writes_nothing(tmp_path):
    # A cancelled CSV run: the temporary file is closed while the writer's text
    # wrapper still buffers a row; collecting the wrapper later must not write to it.
    import gc
    import io
    import sys

    from django_async_reports.services.measured_output import Measured

    unraisable = []
    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with open(tmp_path / "part.csv", "wb") as fh:
            measured = Measured(fh)
            text = io.TextIOWrapper(measured, encoding="utf-8", newline="", write_through=False)
            text.write("1,2\r\n")  # buffered, not written yet
        assert measured.closed
        del text
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert unraisable == []
    assert (tmp_path / "part.csv").read_bytes() == b""
