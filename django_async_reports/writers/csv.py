"""UTF-8 CSV writer with spreadsheet formula neutralisation."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from .base import ReportWriter

# Cells starting with these are run as formulas by Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralize_cell(value: Any) -> Any:
    """Prefix a text cell a spreadsheet would execute with ``'``; leave numbers alone.

    Numeric types are never touched, and neither is text that is just a number
    ("-12.5"), which a spreadsheet reads as that number and nothing else.
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        if _PLAIN_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


class CSVWriter(ReportWriter):
    format = "csv"
    extension = "csv"
    content_type = "text/csv; charset=utf-8"
    label = "CSV"

    def __init__(self, fileobj: Any, **kwargs: Any) -> None:
        super().__init__(fileobj, **kwargs)
        self._text = io.TextIOWrapper(fileobj, encoding="utf-8", newline="", write_through=False)
        self._csv = csv.writer(self._text)

    def write_header(self, columns: Sequence[str]) -> None:
        self._csv.writerow(columns)

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self.neutralize_formulas:
            rows = [[neutralize_cell(cell) for cell in row] for row in rows]
        self._csv.writerows(rows)

    def close(self) -> None:
        self._text.flush()
        # Leave the underlying binary file open for the caller to upload.
        self._text.detach()
