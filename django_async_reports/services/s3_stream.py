"""Report files written straight into an S3 multipart upload: no local copy of the file.

On django-storages' S3 backend, the formats a writer only appends to (CSV,
JSON, NDJSON) are uploaded while they are written, in parts of
``S3_PART_SIZE`` bytes held in memory one at a time; with ``compress`` the
gzip is made in the stream, so the stored object is the ``.gz`` itself. Its
size and sha256 are measured on the way: post-processing then has nothing to
read back. A report smaller than one part is stored by one ``PutObject``.

Every way out but success (an error, a cancel, a soft time limit) aborts the
upload. A worker killed outright cannot: its parts wait for the orphan sweep
(:func:`abort_stale_uploads`) or the bucket's ``AbortIncompleteMultipartUpload``
lifecycle rule (docs/storage.md).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from ..conf import report_settings
from ..exceptions import AsyncReportsError
from .files import BLOCK_SIZE, GZIP_EXTENSION, StoredFile
from .gzipping import gzip_backend

logger = logging.getLogger(__name__)

#: Formats whose writers only ever append: they need no seekable file.
STREAMED_FORMATS = frozenset({"csv", "json", "ndjson"})
#: S3's smallest part but the last, its largest part and its most parts per upload.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
#: ``result_data`` key of the stored file measured while streaming, until post-processing.
STREAMED_KEY = "streamed_file"

# Arguments the parts, the completion and the abort must repeat (as s3transfer does):
# an SSE-C key is sent with every request, and requester-pays / bucket-owner guards too.
_EVERY_REQUEST = ("RequestPayer", "ExpectedBucketOwner")
_SSE_C = ("SSECustomerKey", "SSECustomerAlgorithm", "SSECustomerKeyMD5")
_PART_ARGS = (*_EVERY_REQUEST, *_SSE_C, "ChecksumAlgorithm")
_COMPLETE_ARGS = (*_EVERY_REQUEST, *_SSE_C)
# Whole-object arguments that a CreateMultipartUpload or a PutObject refuses.
_NOT_FOR_CREATE = ("ChecksumType", "MpuObjectSize")


class StreamingUploadError(AsyncReportsError, OSError):
    """The upload cannot go on (more parts than S3 accepts)."""


def s3_storage_class() -> type[Any] | None:
    """django-storages' S3 backend class; None when django-storages (or boto3) is missing."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:
        return None
    return S3Storage


def streams(storage: Any, fmt: str) -> bool:
    """Whether a report of format ``fmt`` is uploaded as it is written to ``storage``.

    Yes on django-storages' S3 backend (``S3Boto3Storage`` is the same class)
    for :data:`STREAMED_FORMATS`, unless ``S3_STREAMING`` is off or the storage
    gzips content itself (its ``gzip`` option: the temporary-file path keeps it).
    """
    if not report_settings.S3_STREAMING or fmt not in STREAMED_FORMATS:
        return False
    s3_class = s3_storage_class()
    # isinstance sees through the report storage's LazyObject.
    if s3_class is None or not isinstance(storage, s3_class):
        return False
    return not getattr(storage, "gzip", False)


class MultipartUpload(io.RawIOBase):
    """A write-only file object that uploads what it is given in parts of ``part_size`` bytes.

    Memory holds at most one part (plus the write being taken in); no disk is
    used. ``size`` and ``checksum`` describe the bytes written. Call
    :meth:`complete` once everything is written, :meth:`abort` otherwise.
    """

    def __init__(self, storage: Any, name: str, part_size: int) -> None:
        super().__init__()
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        self.key = storage._normalize_name(name)  # the storage's location prefix and checks
        # As django-storages' own save: object_parameters, the guessed type, default_acl.
        self.params = dict(storage._get_write_parameters(self.key))
        for name_ in _NOT_FOR_CREATE:
            self.params.pop(name_, None)
        if getattr(self.client.meta.config, "request_checksum_calculation", None) == (
            "when_supported"
        ):
            # What boto3's transfer manager does: each part carries a CRC32, named again at
            # completion, so S3 checks every part as it would for django-storages' uploads.
            self.params.setdefault("ChecksumAlgorithm", "CRC32")
        self.part_size = part_size
        self.size = 0
        self._digest = hashlib.sha256()
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self.upload_id: str | None = None

    @property
    def checksum(self) -> str:
        """``"sha256:<hex>"`` of the bytes written so far."""
        return f"sha256:{self._digest.hexdigest()}"

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self.size += len(view)
        self._buffer += view
        while len(self._buffer) >= self.part_size:
            with memoryview(self._buffer) as buffered:  # one copy of the part, not two
                part = bytes(buffered[: self.part_size])
            del self._buffer[: self.part_size]
            self._upload_part(part)
        return len(view)

    def complete(self) -> None:
        """Upload what is left and make the object; one ``PutObject`` when it fits in one part."""
        if self.upload_id is None:
            put = {k: v for k, v in self.params.items() if k != "ChecksumAlgorithm"}
            self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), **put
            )
        else:
            if self._buffer or not self._parts:
                self._upload_part(bytes(self._buffer))
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self._parts},
                **_only(self.params, _COMPLETE_ARGS),
            )
        self._buffer = bytearray()

    def abort(self) -> None:
        """Abort the upload so S3 drops its parts; a failure is logged, never raised."""
        self._buffer = bytearray()
        if self.upload_id is None:
            return
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                **_only(self.params, _EVERY_REQUEST),
            )
        except Exception:  # the lifecycle rule and the orphan sweep remain
            logger.warning("Could not abort the upload of %s", self.key, exc_info=True)

    def _upload_part(self, body: bytes) -> None:
        if self.upload_id is None:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, **self.params
            )
            self.upload_id = created["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StreamingUploadError(
                f"{self.key} needs more than {MAX_PARTS} parts of {self.part_size} bytes: "
                "raise ASYNC_REPORTS['S3_PART_SIZE']."
            )
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
            **_only(self.params, _PART_ARGS),
        )
        part = {"ETag": response["ETag"], "PartNumber": number}
        algorithm = self.params.get("ChecksumAlgorithm")
        if algorithm and f"Checksum{algorithm.upper()}" in response:
            member = f"Checksum{algorithm.upper()}"
            part[member] = response[member]
        self._parts.append(part)


def _only(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: params[name] for name in names if name in params}


class _Counted(io.RawIOBase):
    """Passes writes on to ``target`` and counts their bytes (the size before gzip)."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = self.target.write(data)
        self.size += written
        return written


@dataclass
class StreamedOutput:
    """What a writer writes to (``fileobj``) and, once the block is left, what was stored."""

    fileobj: IO[bytes]
    name: str
    stored: StoredFile | None = None


class _Blocked(io.RawIOBase):
    """Passes writes on to ``target`` in blocks of exactly BLOCK_SIZE bytes (the last one
    shorter on ``close``), as post-processing reads a file: igzip's output depends on how
    its input is split."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.pending += data
        while len(self.pending) >= BLOCK_SIZE:
            self.target.write(bytes(self.pending[:BLOCK_SIZE]))
            del self.pending[:BLOCK_SIZE]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            if self.pending:
                self.target.write(bytes(self.pending))
                self.pending.clear()
            self.target.close()
        super().close()


def gzip_stream(fileobj: Any, name: str) -> Any:
    """A gzip writer on ``fileobj`` whose bytes are post-processing's (``files.compress``):
    the same backend and level, the same input blocks, ``mtime=0``, and the uncompressed
    file's name in the header. Closing it finishes the gzip stream."""
    inner_name = name.rsplit("/", 1)[-1]
    return _Blocked(gzip_backend().open(fileobj, filename=inner_name))


@contextmanager
def upload_stream(
    storage: Any, name: str, *, compress: bool, part_size: int | None = None
) -> Iterator[StreamedOutput]:
    """Write a report to ``storage`` under ``name`` (``name + ".gz"`` with ``compress``).

    The name goes through the storage's ``get_available_name``, as a save
    would. Leaving the block normally completes the upload and fills
    ``stored``; leaving it by any exception aborts the upload.
    """
    target = storage.get_available_name(name + GZIP_EXTENSION if compress else name)
    upload = MultipartUpload(storage, target, int(part_size or report_settings.S3_PART_SIZE))
    zipped = gzip_stream(upload, name) if compress else None
    counted = _Counted(zipped if zipped is not None else upload)
    output = StreamedOutput(fileobj=counted, name=target)  # type: ignore[arg-type]
    try:
        yield output
        if zipped is not None:
            zipped.close()
        upload.complete()
    except BaseException:
        upload.abort()
        raise
    output.stored = StoredFile(target, upload.size, upload.checksum, counted.size)


# -- incomplete uploads of dead workers --------------------------------------------
@dataclass(frozen=True)
class PendingUpload:
    """An incomplete multipart upload: its storage name, S3 key and id, and when it began."""

    name: str
    key: str
    upload_id: str
    initiated: datetime


def pending_uploads(storage: Any, folder: str) -> list[PendingUpload]:
    """The incomplete multipart uploads under ``folder`` of an S3 storage (none elsewhere)."""
    s3_class = s3_storage_class()
    if s3_class is None or not isinstance(storage, s3_class):
        return []
    prefix = storage._normalize_name(folder).rstrip("/") + "/"
    location = storage._normalize_name("")  # the storage's own prefix, "" when none
    client = storage.connection.meta.client
    found = []
    for page in client.get_paginator("list_multipart_uploads").paginate(
        Bucket=storage.bucket_name, Prefix=prefix
    ):
        for item in page.get("Uploads", ()):
            key = item["Key"]
            name = key[len(location) :].lstrip("/") if location else key
            found.append(PendingUpload(name, key, item["UploadId"], item["Initiated"]))
    return found


def abort_upload(storage: Any, upload: PendingUpload) -> None:
    """Abort one incomplete upload (its parts are dropped); errors propagate."""
    storage.connection.meta.client.abort_multipart_upload(
        Bucket=storage.bucket_name, Key=upload.key, UploadId=upload.upload_id
    )
