"""Compressed reports through each gzip backend: python-isal's igzip when installed, else stdlib.

Whichever backend wrote it, the file is standard gzip (stdlib ``gzip`` reads
it back byte for byte), deterministic, and compressed at ``GZIP_LEVEL``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from django_async_reports.services import files, gzipping
from django_async_reports.storage import report_storage

HAS_ISAL = gzipping.isal_gzip_file() is not None
needs_isal = pytest.mark.skipif(not HAS_ISAL, reason="python-isal (fast-gzip extra) not installed")

# Report-like CSV, a little over two read blocks so several writes reach the compressor.
DATA = b"".join(
    b"%d,2024-01-%02d 10:%02d:00,Customer %d,Product %d,%d.%02d,paid\r\n"
    % (n, 1 + n % 28, n % 60, n % 5000, n % 300, n % 900, n % 100)
    for n in range(50_000)
)


@pytest.fixture
def without_isal(monkeypatch):
    """The fast-gzip extra absent: importing ``isal`` fails as if it were not installed."""
    monkeypatch.setitem(sys.modules, "isal", None)
    monkeypatch.setitem(sys.modules, "isal.igzip", None)


@pytest.fixture
def stored_csv():
    return report_storage.save("reports/gz/orders.csv", ContentFile(DATA))


def stored_bytes(name):
    with report_storage.open(name, "rb") as fh:
        return fh.read()


def digest(data):
    """Compared instead of the bytes: pytest's diff of two large byte strings takes minutes."""
    return (len(data), hashlib.sha256(data).hexdigest())


def reference_gzip(gzip_file, level):
    """What ``gzip_file`` writes for DATA at ``level``, named and dated as ``files.compress``."""
    out = io.BytesIO()
    with gzip_file(
        filename="orders.csv", mode="wb", fileobj=out, compresslevel=level, mtime=0
    ) as gz:
        # In blocks, as files.compress writes: igzip's output depends on the split.
        for offset in range(0, len(DATA), files.BLOCK_SIZE):
            gz.write(DATA[offset : offset + files.BLOCK_SIZE])
    return out.getvalue()


@pytest.fixture(params=["zlib", pytest.param("isal", marks=needs_isal)])
def backend(request, monkeypatch):
    if request.param == "zlib":
        monkeypatch.setitem(sys.modules, "isal", None)
        monkeypatch.setitem(sys.modules, "isal.igzip", None)
    return request.param


class TestChoice:
    def test_default_is_isal_level_3_when_installed_else_zlib_6(self):
        chosen = gzipping.gzip_backend()
        assert (chosen.name, chosen.level) == (("isal", 3) if HAS_ISAL else ("zlib", 6))

    def test_without_the_extra_zlib_level_6_as_before(self, without_isal):
        chosen = gzipping.gzip_backend()
        assert (chosen.name, chosen.level, chosen.gzip_file) == ("zlib", 6, gzip.GzipFile)

    @needs_isal
    @pytest.mark.parametrize("level", [1, 2, 3])
    def test_levels_1_to_3_use_isal(self, level):
        with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
            chosen = gzipping.gzip_backend()
        assert (chosen.name, chosen.level) == ("isal", level)

    @pytest.mark.parametrize("level", [4, 6, 9])
    def test_levels_isal_lacks_use_zlib(self, level):
        with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
            chosen = gzipping.gzip_backend()
        assert (chosen.name, chosen.level) == ("zlib", level)

    @pytest.mark.parametrize("level", [1, 3])
    def test_low_levels_fall_back_to_zlib_at_that_level(self, without_isal, level):
        with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
            chosen = gzipping.gzip_backend()
        assert (chosen.name, chosen.level) == ("zlib", level)

    @pytest.mark.parametrize("level", [0, 10, "6"])
    def test_a_level_outside_1_to_9_is_refused(self, level):
        with pytest.raises(ValueError, match="GZIP_LEVEL"):
            gzipping.gzip_backend(level)


@pytest.mark.parametrize("level", [None, 1, 3, 9])
def test_stdlib_gzip_reads_back_the_same_bytes(backend, stored_csv, level):
    with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
        stored = files.compress(report_storage, stored_csv)
    gz = stored_bytes(stored.name)
    assert digest(gzip.decompress(gz)) == digest(DATA)
    assert stored.uncompressed_size == len(DATA)
    assert stored.size == len(gz) < len(DATA) / 3
    # The header as before: the inner file's name, no timestamp.
    assert gz[3] & 0x08 and gz[4:8] == b"\x00\x00\x00\x00"
    assert gz[10:].split(b"\x00", 1)[0] == b"orders.csv"


@pytest.mark.parametrize("level", [1, 6, 9])
def test_zlib_output_is_exactly_stdlib_gzip_at_the_level(without_isal, stored_csv, level):
    with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
        stored = files.compress(report_storage, stored_csv)
    assert digest(stored_bytes(stored.name)) == digest(reference_gzip(gzip.GzipFile, level))


@needs_isal
@pytest.mark.parametrize("level", [None, 1, 2, 3])
def test_isal_output_is_igzip_at_the_level(stored_csv, level):
    from isal import igzip

    with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
        stored = files.compress(report_storage, stored_csv)
    expected = reference_gzip(igzip.GzipFile, 3 if level is None else level)
    assert digest(stored_bytes(stored.name)) == digest(expected)
    # Not what zlib writes: the level really went to igzip.
    assert digest(expected) != digest(reference_gzip(gzip.GzipFile, 3 if level is None else level))


def test_levels_change_the_output(backend, stored_csv):
    sizes = set()
    for level in (1, 3) if backend == "isal" else (1, 9):
        with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
            name = files.compress(report_storage, stored_csv).name
        sizes.add(len(stored_bytes(name)))
        report_storage.delete(name)
    assert len(sizes) == 2


def test_deterministic_whatever_the_clock(backend, stored_csv, monkeypatch):
    monkeypatch.setattr(gzip.time, "time", lambda: 1_000_000_000.0)
    first = files.compress(report_storage, stored_csv)
    first_gz = stored_bytes(first.name)
    monkeypatch.setattr(gzip.time, "time", lambda: 2_000_000_000.0)
    # The copy already stored is found identical and kept, not stored beside.
    second = files.compress(report_storage, stored_csv)
    assert second.name == first.name == stored_csv + ".gz"
    assert second.checksum == first.checksum
    assert digest(stored_bytes(second.name)) == digest(first_gz)


class _ShortReads(io.BytesIO):
    """A stored file whose reads return at most 1000 bytes, as a network stream may."""

    def read(self, size=-1):
        return super().read(1000 if size is None or size < 0 else min(size, 1000))


def test_short_reads_from_storage_give_the_same_bytes(backend, stored_csv, monkeypatch):
    expected = stored_bytes(files.compress(report_storage, stored_csv).name)
    report_storage.delete(stored_csv + ".gz")
    monkeypatch.setattr(report_storage, "open", lambda name, mode="rb": _ShortReads(DATA))
    stored = files.compress(report_storage, stored_csv)
    monkeypatch.undo()
    assert digest(stored_bytes(stored.name)) == digest(expected)
