"""Joining a partitioned report's part files, in order, into the report's one file.

Parts are written so that their bytes joined are the file (the first part
holds the header): joining is a byte copy. On S3 (django-storages'
``S3Storage``) the copy stays in the bucket: a multipart upload whose parts
are server-side copies of the part objects (``UploadPartCopy``), nothing
downloaded. S3 wants every part of a multipart upload but the last to be at
least 5 MiB, so smaller parts are joined by streaming them through the
worker instead, as on any other storage.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import Storage

logger = logging.getLogger(__name__)

#: S3's smallest multipart part (all but the last one).
S3_MIN_PART_SIZE = 5 * 1024 * 1024
#: S3's most parts in one multipart upload.
S3_MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartFile:
    """A stored part: its name in the report storage and its size in bytes."""

    name: str
    size: int


class _JoinedReader(io.RawIOBase):
    """The stored files ``names``, read one after the other as one stream, a block at a time."""

    def __init__(self, storage: Storage, names: Sequence[str]) -> None:
        self._storage = storage
        self._names: Iterator[str] = iter(names)
        self._current: IO[bytes] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._current is None:
                name = next(self._names, None)
                if name is None:
                    return 0
                self._current = self._storage.open(name, "rb")
            data = self._current.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()


def join_parts(storage: Storage, parts: Sequence[PartFile], target: str) -> str:
    """Store the parts' bytes, in order, as ``target``; returns the stored name.

    Server-side on S3 when every part but the last is at least 5 MiB,
    streamed through this process otherwise (constant memory either way).
    """
    if _multipart_copy_applies(storage, parts):
        return _s3_multipart_copy(storage, parts, target)
    reader = io.BufferedReader(_JoinedReader(storage, [part.name for part in parts]))
    with reader:
        return storage.save(target, File(reader, name=target))


def _is_s3(storage: Storage) -> bool:
    """django-storages' S3 backend (or a subclass): it has a boto3 bucket and its key rules."""
    return all(hasattr(storage, attr) for attr in ("bucket", "bucket_name", "_normalize_name"))


def _multipart_copy_applies(storage: Storage, parts: Sequence[PartFile]) -> bool:
    if not _is_s3(storage) or not 1 < len(parts) <= S3_MAX_PARTS:
        return False
    return all(part.size >= S3_MIN_PART_SIZE for part in parts[:-1])


def _s3_multipart_copy(storage: Any, parts: Sequence[PartFile], target: str) -> str:
    """One multipart upload of ``target`` whose parts are copies of the part objects."""
    from storages.utils import clean_name

    cleaned = clean_name(target)
    key = storage._normalize_name(cleaned)
    bucket = storage.bucket_name
    client = storage.bucket.meta.client
    params = storage._get_write_parameters(key)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **params)["UploadId"]
    try:
        etags = []
        for number, part in enumerate(parts, start=1):
            source = storage._normalize_name(clean_name(part.name))
            answer = client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": bucket, "Key": source},
            )
            etags.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": etags}
        )
    except Exception:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:
            logger.warning("Could not abort the multipart upload of %s", key, exc_info=True)
        raise
    return str(cleaned)
