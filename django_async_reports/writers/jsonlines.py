"""JSON (one streamed array of objects) and NDJSON (one object per line) writers.

Values are encoded by :class:`~.cells.ReportJSONEncoder`, i.e. Django's
``DjangoJSONEncoder``: dates, times and datetimes in ISO 8601, ``Decimal`` and
``UUID`` as strings (a JSON number would go through a float and lose digits),
durations as ISO 8601 durations. NaN and infinities, which JSON cannot hold,
become ``null``. No formula neutralisation: JSON is not opened by spreadsheets.

The module is not called ``json`` so that it never shadows the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .base import ReportWriter
from .cells import ReportJSONEncoder


class _JSONObjectsWriter(ReportWriter):
    """Encodes each row as one JSON object keyed by column, a chunk at a time."""

    def __init__(self, fileobj: Any, **kwargs: Any) -> None:
        super().__init__(fileobj, **kwargs)
        self.encoder = ReportJSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        self.keys: list[str] = []

    def write_header(self, columns: Sequence[str]) -> None:
        self.keys = unique_keys(columns)

    def encode_rows(self, rows: Sequence[Sequence[Any]]) -> list[str]:
        keys, encode = self.keys, self.encoder.encode
        encoded = []
        for row in rows:
            try:
                encoded.append(encode(dict(zip(keys, row, strict=False))))
            except ValueError:  # NaN or infinity somewhere in the row.
                encoded.append(encode(dict(zip(keys, map(_finite, row), strict=False))))
        return encoded


class JSONWriter(_JSONObjectsWriter):
    """``[`` then one object per line separated by ``,`` then ``]``: valid JSON with 0 rows."""

    format = "json"
    extension = "json"
    content_type = "application/json"
    label = "JSON"

    def __init__(self, fileobj: Any, **kwargs: Any) -> None:
        super().__init__(fileobj, **kwargs)
        self.opened = False
        self.first = True
        self.closed = False

    def write_header(self, columns: Sequence[str]) -> None:
        super().write_header(columns)
        self.fileobj.write(b"[")
        self.opened = True

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        text = ",\n".join(self.encode_rows(rows))
        self.fileobj.write(("\n" if self.first else ",\n").encode() + text.encode("utf-8"))
        self.first = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.opened:
                self.fileobj.write(b"[")
            self.fileobj.write(b"]\n" if self.first else b"\n]\n")
            self.fileobj.flush()


class NDJSONWriter(_JSONObjectsWriter):
    """Newline-delimited JSON: one object per line, UTF-8, no header line."""

    format = "ndjson"
    extension = "ndjson"
    content_type = "application/x-ndjson"
    label = "NDJSON (JSON lines)"
    concatenable = True

    def resume(self, columns: Sequence[str]) -> None:
        """The keys, as ``write_header`` sets them (NDJSON has no header line)."""
        self.write_header(columns)

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.fileobj.write(("\n".join(self.encode_rows(rows)) + "\n").encode("utf-8"))

    def close(self) -> None:
        self.fileobj.flush()


def unique_keys(columns: Sequence[str]) -> list[str]:
    """Column names as object keys; a repeated name gets ``_2``, ``_3``... so no value is lost."""
    keys: list[str] = []
    seen: set[str] = set()
    for column in columns:
        key, number = str(column), 1
        while key in seen:
            number += 1
            key = f"{column}_{number}"
        seen.add(key)
        keys.append(key)
    return keys


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float, however deeply nested, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value
