"""Which gzip compressor post-processing uses: python-isal's igzip when installed, else stdlib.

Both write the gzip file format, so every ``.gz`` reads back with stdlib
``gzip``, ``gunzip`` or a browser. igzip (the ``fast-gzip`` extra) has levels
0-3 only; ``benchmarks/compression.py`` measured its level 3 at about 5x
the throughput of zlib's level 6 for 94 % of its ratio on report CSV.

``ASYNC_REPORTS["GZIP_LEVEL"]``: ``None`` picks igzip level 3, or zlib level 6
without the extra (the level used before the setting existed). A level from 1
to 3 is igzip's when it is installed, zlib's otherwise; 4 to 9 are zlib's only,
so they always use the standard library.

Output is deterministic for a given backend, level and library version
(``mtime=0``): a retried step rebuilds the very bytes of an attempt that died.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ..conf import report_settings

#: Levels igzip offers (0 is left out: it compresses worse than zlib's 1 for no speed gained).
ISAL_LEVELS = range(1, 4)
#: The levels the setting accepts: zlib's.
LEVELS = range(1, 10)
#: The measured sweet spots: igzip 3 (about 5x zlib 6, 94 % of its ratio); zlib 6 without igzip.
DEFAULT_ISAL_LEVEL = 3
DEFAULT_ZLIB_LEVEL = 6


@dataclass(frozen=True)
class GzipBackend:
    """A gzip compressor and the level it runs at."""

    name: str  # "isal" or "zlib"
    level: int
    gzip_file: Callable[..., gzip.GzipFile]

    def open(self, fileobj: IO[bytes], *, filename: str) -> gzip.GzipFile:
        """A ``GzipFile`` writing into ``fileobj``: header with ``filename``, mtime 0."""
        return self.gzip_file(
            filename=filename, mode="wb", fileobj=fileobj, compresslevel=self.level, mtime=0
        )


def isal_gzip_file() -> Callable[..., Any] | None:
    """python-isal's ``GzipFile`` (a ``gzip.GzipFile`` subclass), or None when not installed."""
    try:
        from isal import igzip
    except ImportError:
        return None
    return igzip.GzipFile


def gzip_backend(level: int | None = None) -> GzipBackend:
    """The compressor for ``level`` (default: the ``GZIP_LEVEL`` setting): igzip when it can."""
    if level is None:
        level = report_settings.GZIP_LEVEL
    if level is not None and level not in LEVELS:
        raise ValueError(f"GZIP_LEVEL must be None or an integer from 1 to 9, not {level!r}.")
    isal = isal_gzip_file()
    if isal is not None and (level is None or level in ISAL_LEVELS):
        return GzipBackend("isal", DEFAULT_ISAL_LEVEL if level is None else level, isal)
    return GzipBackend("zlib", DEFAULT_ZLIB_LEVEL if level is None else level, gzip.GzipFile)
