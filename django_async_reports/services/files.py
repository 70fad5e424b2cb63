"""Work on a report's stored files: gzip, checksum and size in constant memory; deletes.

The generation step stores the writer's file as it is; the post-processing
step, a task of its own, reads it back from storage, compresses
it when the report asked for ``compress``, and measures what is finally
stored. Being separate, it is retried on its own: an upload that fails never
costs a second generation of a million rows.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage

from ..models import Report
from ..storage import delete_report_files, report_storage
from .gzipping import gzip_backend

logger = logging.getLogger(__name__)

BLOCK_SIZE = 1024 * 1024
GZIP_EXTENSION = ".gz"


@dataclass(frozen=True)
class StoredFile:
    """What is stored once post-processing is done."""

    name: str
    size: int
    checksum: str  # "sha256:<hex>" of the stored bytes
    uncompressed_size: int


def _blocks(fh: IO[bytes]) -> Iterator[bytes]:
    """``fh`` in blocks of exactly BLOCK_SIZE bytes (the last one shorter), even when a
    storage's file returns short reads: igzip's output depends on how its input is split,
    and two runs over one file must write the same bytes."""
    pending = b""
    while chunk := fh.read(BLOCK_SIZE - len(pending)):
        pending = pending + chunk if pending else chunk
        if len(pending) == BLOCK_SIZE:
            yield pending
            pending = b""
    if pending:
        yield pending


def measure(storage: Storage, name: str) -> StoredFile:
    """Size and sha256 of a stored file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with storage.open(name, "rb") as fh:
        for block in _blocks(fh):
            digest.update(block)
            size += len(block)
    return StoredFile(name, size, f"sha256:{digest.hexdigest()}", size)


def compress(storage: Storage, name: str) -> StoredFile:
    """Store a gzip copy of ``name`` as ``name + ".gz"`` and measure it.

    The compressor is python-isal's igzip when installed, at ``GZIP_LEVEL``
    (see ``gzipping``); the file is standard gzip whichever wrote it.

    The original is left in place: the caller deletes it once the report row
    points at the copy, so a crash in between loses nothing.
    """
    target = name + GZIP_EXTENSION
    inner_name = name.rsplit("/", 1)[-1]
    raw_size = 0
    backend = gzip_backend()
    with tempfile.TemporaryFile() as tmp:
        # mtime=0: the same report compresses to the same bytes (with one backend and level).
        gz = backend.open(tmp, filename=inner_name)
        with storage.open(name, "rb") as src, gz:
            for block in _blocks(src):
                gz.write(block)
                raw_size += len(block)
        digest = hashlib.sha256()
        tmp.seek(0)
        for block in _blocks(tmp):
            digest.update(block)
        size = tmp.tell()
        tmp.seek(0)
        checksum = f"sha256:{digest.hexdigest()}"
        # A copy already there is never deleted: it may be the file a duplicate
        # run of this step (a redelivered message) just completed the report
        # with. gzip here is deterministic, so the copy of an attempt that died
        # before its update has these very bytes and is kept as it is; anything
        # else (a partial upload, or a copy a worker with another gzip backend
        # or GZIP_LEVEL wrote) stays beside ours for the caller to sweep.
        if storage.exists(target) and _same_file(storage, target, size, checksum):
            stored = target
        else:
            stored = storage.save(target, File(tmp, name=target))
    return StoredFile(stored, size, checksum, raw_size)


def _same_file(storage: Storage, name: str, size: int, checksum: str) -> bool:
    measured = measure(storage, name)
    return (measured.size, measured.checksum) == (size, checksum)


def discard_files(report: Report) -> None:
    """Delete a report's file and whatever else its own folder holds (a step killed
    mid-way may have left an upload the row does not point at)."""
    delete_file(report.result_file.name)
    try:
        delete_report_files(report.user_id, report.pk)
    except Exception:  # as for one file: it must not stop a cancel or a failure
        logger.warning("Could not clean the folder of report %s", report.pk, exc_info=True)


def delete_file(name: str | None) -> None:
    """Delete one stored file; a failure is logged, never raised."""
    if not name:
        return
    try:
        report_storage.delete(name)
    except Exception:  # a missing file must not stop a cancel or a failure
        logger.warning("Could not delete report file %s", name, exc_info=True)
