"""UTF-8 CSV writer with spreadsheet formula neutralisation."""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from .base import ReportWriter

# Cells starting with these are run as formulas by Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# ASCII digits only: spreadsheets read no other digits as a number (and the
# CSV fast path, services.copy_export, applies this very rule in SQL).
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
# Types whose text never starts with a trigger, or is a plain number when it
# does (a negative int): written as they are, without building their text twice.
_SAFE_TYPES = frozenset({int, bool, type(None), datetime.date, datetime.datetime, datetime.time})
# Python 3.10's csv module refuses a NUL character in a cell ("need to escape, but no
# escapechar set"); 3.11 and later write it as it is, unquoted.
_CSV_WRITES_NUL = sys.version_info >= (3, 11)


def neutralize_text(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula.

    Text that is just a number ("-12.5", "+3", "1e-5") is left alone: a
    spreadsheet reads it as that number and nothing else.
    """
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def neutralize_cell(value: Any) -> Any:
    """The value to write for ``value``: itself, or its text prefixed with ``'``.

    Judged on the text a writer would put in the file (``str(value)``), not on
    the type: a lazy translation, an ``IPv4Address`` or any object whose
    ``__str__`` starts with a trigger is neutralised too. Finite numbers stay
    numbers (``-5``, ``Decimal("-1.20")``), and so do ``None``, booleans and dates;
    a non-finite one (``-inf``) is not a number to a spreadsheet and is neutralised.
    """
    kind = type(value)
    if kind is str:
        return neutralize_text(value)
    if kind in _SAFE_TYPES:
        return value
    if (kind is float and math.isfinite(value)) or (kind is Decimal and value.is_finite()):
        return value
    text = str(value)
    neutralized = neutralize_text(text)
    return value if neutralized is text else neutralized


class CSVWriter(ReportWriter):
    """Rows as UTF-8 CSV; with ``neutralize_formulas``, header and cells are neutralised."""

    format = "csv"
    extension = "csv"
    content_type = "text/csv; charset=utf-8"
    label = "CSV"
    concatenable = True

    def __init__(self, fileobj: Any, **kwargs: Any) -> None:
        super().__init__(fileobj, **kwargs)
        self._text = io.TextIOWrapper(fileobj, encoding="utf-8", newline="", write_through=False)
        self._csv = csv.writer(self._text)

    def write_header(self, columns: Sequence[str]) -> None:
        # Column names may come from user data (a custom field's label) too.
        if self.neutralize_formulas:
            columns = [neutralize_cell(column) for column in columns]
        self._write_row(columns)

    def resume(self, columns: Sequence[str]) -> None:
        """Nothing to prepare: the first part's file holds the header."""

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self.neutralize_formulas:
            rows = [[neutralize_cell(cell) for cell in row] for row in rows]
        if _CSV_WRITES_NUL:
            self._csv.writerows(rows)
        else:
            for row in rows:
                self._write_row(row)

    def _write_row(self, row: Sequence[Any]) -> None:
        try:
            self._csv.writerow(row)
        except csv.Error:
            if _CSV_WRITES_NUL:
                raise
            self._text.write(_row_with_nul(row))

    def close(self) -> None:
        self._text.flush()
        # Leave the underlying binary file open for the caller to upload.
        self._text.detach()


def _row_with_nul(row: Sequence[Any]) -> str:
    """The line Python 3.11+ writes for a row with NUL characters, on Python 3.10.

    The row is written with a stand-in character for NUL, one the row does not
    hold and that needs no quoting, and NUL is put back in the line.
    """
    texts = ["" if cell is None else str(cell) for cell in row]
    stand_in = next(chr(c) for c in range(0xE000, 0xF900) if not any(chr(c) in t for t in texts))
    line = io.StringIO(newline="")
    csv.writer(line).writerow([text.replace("\0", stand_in) for text in texts])
    return line.getvalue().replace(stand_in, "\0")
