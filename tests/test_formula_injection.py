"""No cell of a CSV or XLSX file would run as a formula, whatever the rows and headers hold.

Property-based (hypothesis): rows and headers of str, int, float, Decimal, bool,
None, date, datetime, timedelta, IP addresses, lazy strings and objects with an
arbitrary ``__str__``, biased towards text starting with a formula trigger. Each
file is read back as a spreadsheet would read it (the csv module; openpyxl),
and the check of "runs as a formula" is written here, apart from the writers'.
"""

from __future__ import annotations

import csv
import datetime
import io
import ipaddress
import zipfile
from decimal import Decimal
from typing import Any

import openpyxl
from django.utils.functional import lazystr
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_async_reports.charts import Chart
from django_async_reports.writers import CSVWriter, ReportContext
from django_async_reports.writers.xlsx import XLSXWriter

# OWASP's list: what Excel, LibreOffice and Google Sheets start a formula with.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXAMPLES = hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def is_plain_number(text: str) -> bool:
    """ASCII text a spreadsheet reads as a finite number and nothing else ("-12.5", "+3")."""
    if not text or not text.isascii() or "_" in text or text != text.strip():
        return False
    if any(word in text.lower() for word in ("inf", "nan")):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def runs_as_formula(text: str) -> bool:
    return text.startswith(TRIGGERS) and not is_plain_number(text)


class Shown:
    """A value of no known type that shows an arbitrary text (a model instance, say)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Shown({self.text!r})"


texts = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda trigger, rest: trigger + rest, st.sampled_from(TRIGGERS), st.text(max_size=20)
    ),
    st.sampled_from(["-12.5", "+3", "1e-5", "-1 day", "=1+1", '=HYPERLINK("http://x")', ""]),
)
values = st.one_of(
    texts,
    st.integers(),
    st.floats(),  # NaN and infinities too
    st.decimals(),  # NaN, sNaN and infinities too
    st.booleans(),
    st.none(),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    st.timedeltas(
        min_value=datetime.timedelta(days=-9000), max_value=datetime.timedelta(days=9000)
    ),
    st.builds(Shown, texts),
    st.builds(lazystr, texts),
    st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)),
)


@st.composite
def tables(draw: Any) -> tuple[list[Any], list[list[Any]]]:
    width = draw(st.integers(1, 4))
    header = draw(st.lists(values, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(values, min_size=width, max_size=width), max_size=8))
    return header, rows


def as_text(value: Any) -> str:
    """What the csv module writes for a value."""
    return "" if value is None else str(value)


def read_csv(text: str) -> list[list[str]]:
    """The cells as the csv module reads them (Python 3.10's reader refuses NUL: a
    character the text does not hold stands in for it)."""
    stand_in = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
    rows = csv.reader(io.StringIO(text.replace("\0", stand_in), newline=""))
    return [[cell.replace(stand_in, "\0") for cell in row] for row in rows]


@EXAMPLES
@given(tables())
def test_no_csv_cell_runs_as_a_formula_and_every_row_is_kept(table):
    header, rows = table
    buffer = io.BytesIO()
    writer = CSVWriter(buffer)
    writer.write_header(header)
    writer.write_rows(rows)
    writer.close()

    parsed = read_csv(buffer.getvalue().decode("utf-8"))

    assert len(parsed) == 1 + len(rows)
    for written, given_row in zip(parsed, [header, *rows], strict=True):
        assert len(written) == len(given_row)
        for cell, value in zip(written, given_row, strict=True):
            assert not runs_as_formula(cell), (value, cell)
            # Nothing is lost: the cell is the value's text, or that text behind a "'".
            assert cell in (as_text(value), "'" + as_text(value)), (value, cell)


@EXAMPLES
@given(tables(), texts, st.dictionaries(texts, values, max_size=3))
def test_no_xlsx_cell_is_a_formula_nor_text_that_runs_as_one(table, title, summary):
    header, rows = table
    buffer = io.BytesIO()
    context = ReportContext(title=title, label="Sales", report_type="sales", parameters=summary)
    writer = XLSXWriter(buffer, context=context)
    writer.write_header(header)
    writer.write_rows(rows)
    writer.write_summary(summary, len(rows))
    writer.close()

    book = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))

    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if cell.data_type == "s" and cell.value is not None:
                    assert not runs_as_formula(cell.value), (sheet.title, cell.value)
    report = book["Report"]
    # Every row lands on its own line, below the header (trailing empty rows leave no cells).
    assert report.max_row <= 1 + len(rows)
    for number, given_row in enumerate([header, *rows], start=1):
        for col, value in enumerate(given_row, start=1):
            if as_text(value):
                assert report.cell(number, col).value is not None, (number, col, value)


def test_header_cells_are_neutralised_unless_the_generator_opts_out():
    header = ["=cmd|' /C calc'!A0", lazystr("@SUM(1)"), Shown("+x"), "-12.5", "plain"]
    neutral = ["'=cmd|' /C calc'!A0", "'@SUM(1)", "'+x", "-12.5", "plain"]

    def csv_header(**kwargs: Any) -> list[str]:
        buffer = io.BytesIO()
        writer = CSVWriter(buffer, **kwargs)
        writer.write_header(header)
        writer.close()
        return next(csv.reader(io.StringIO(buffer.getvalue().decode())))

    def xlsx_header(**kwargs: Any) -> list[Any]:
        buffer = io.BytesIO()
        writer = XLSXWriter(buffer, **kwargs)
        writer.write_header(header)
        writer.close()
        sheet = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))["Report"]
        return [cell.value for cell in sheet[1]]

    assert csv_header() == neutral
    assert xlsx_header() == neutral
    assert csv_header(neutralize_formulas=False) == [str(column) for column in header]
    assert xlsx_header(neutralize_formulas=False) == [str(column) for column in header]


def test_odd_values_whose_text_starts_with_a_trigger_are_neutralised_in_csv():
    buffer = io.BytesIO()
    writer = CSVWriter(buffer)
    writer.write_header(["a"])
    odd = [
        Shown("=1+1"),
        lazystr("-cmd"),
        datetime.timedelta(days=-1),
        float("-inf"),
        Decimal("-Infinity"),
        -7,
        Decimal("-1.20"),
        -2.5,
    ]
    writer.write_rows([[value] for value in odd])
    writer.close()

    cells = [row[0] for row in csv.reader(io.StringIO(buffer.getvalue().decode()))][1:]

    assert cells == [
        "'=1+1",
        "'-cmd",
        "'-1 day, 0:00:00",
        "'-inf",
        "'-Infinity",
        "-7",
        "-1.20",
        "-2.5",
    ]


def test_chart_series_are_named_by_reference_to_their_neutralised_header():
    columns = ["region", "Sheet!A1"]  # xlsxwriter would take this name for a reference
    context = ReportContext(charts=[Chart.bar("Per region", category="region", values="Sheet!A1")])
    buffer = io.BytesIO()
    writer = XLSXWriter(buffer, context=context)
    writer.write_header(columns)
    writer.write_rows([("north", 1), ("south", 2)])
    writer.write_summary(None, 2)
    writer.close()

    xml = zipfile.ZipFile(io.BytesIO(buffer.getvalue())).read("xl/charts/chart1.xml").decode()
    assert "<c:f>Report!$B$1</c:f>" in xml
    assert "Sheet!A1</c:f>" not in xml


def test_non_finite_numbers_are_text_in_xlsx_never_an_error_formula():
    buffer = io.BytesIO()
    writer = XLSXWriter(buffer)
    writer.write_header(["a", "b", "c", "d"])
    writer.write_rows([[float("nan"), float("inf"), float("-inf"), Decimal("-Infinity")]])
    writer.close()

    row = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))["Report"][2]

    assert [(c.value, c.data_type) for c in row] == [
        ("nan", "s"),
        ("inf", "s"),
        ("'-inf", "s"),
        ("'-Infinity", "s"),
    ]
