"""A report file written to a local temporary file, measured (and gzipped) as it is written.

For the formats whose writers only append (CSV, JSON, NDJSON) on a file-system
storage, the sha256 and size of the stored bytes are taken on the way, and
``compress`` gzips in the stream, the very bytes post-processing's
``files.compress`` would make (same backend, level and input blocks): the
stored file is the ``.gz`` itself and post-processing reads nothing back.
Other storages (whose ``save`` may transform what it is given) and other
formats (whose writers may seek back) keep the plain temporary file, measured
and compressed by post-processing.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.files import File
from django.core.files.storage import FileSystemStorage

from .files import GZIP_EXTENSION, StoredFile
from .s3_stream import STREAMED_FORMATS, StreamedOutput, gzip_stream


class Measured(io.RawIOBase):
    """Passes writes on to ``target``, counting their bytes and hashing them (sha256)."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self.size = 0
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        # A target closed under us (the temporary file of a failed or cancelled run)
        # takes no more bytes: a text wrapper over this object, collected later, then
        # does not flush its buffer into a closed file.
        return super().closed or bool(getattr(self.target, "closed", False))

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.target.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)

    @property
    def checksum(self) -> str:
        return f"sha256:{self.digest.hexdigest()}"


def measures(storage: Any, fmt: str) -> bool:
    """Whether a report of format ``fmt`` is measured while written to ``storage``."""
    return fmt in STREAMED_FORMATS and isinstance(storage, FileSystemStorage)


@contextmanager
def temp_file_output(
    storage: Any, name: str, fmt: str, *, compress: bool
) -> Iterator[StreamedOutput]:
    """A temporary file saved to ``storage`` once the block is left normally (never on an error).

    When :func:`measures` holds, ``stored`` is filled with the saved file's
    name, size and sha256 (and, with ``compress``, it is ``name + ".gz"``).
    """
    with tempfile.TemporaryFile() as tmp:
        if not measures(storage, fmt):
            output = StreamedOutput(fileobj=tmp, name=name)
            yield output
            tmp.seek(0)
            output.name = storage.save(name, File(tmp, name=name))
            return
        measured = Measured(tmp)
        zipped = gzip_stream(measured, name) if compress else None
        raw = Measured(zipped) if zipped is not None else measured
        target = name + GZIP_EXTENSION if compress else name
        output = StreamedOutput(fileobj=raw, name=target)  # type: ignore[arg-type]
        yield output
        if zipped is not None:
            zipped.close()  # ends the gzip stream; the temporary file stays open
        tmp.flush()
        tmp.seek(0)
        output.name = storage.save(target, File(tmp, name=target))
        output.stored = StoredFile(output.name, measured.size, measured.checksum, raw.size)
