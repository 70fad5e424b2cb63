"""Excel (.xlsx) writer on xlsxwriter in ``constant_memory`` mode, with native cell types.

xlsxwriter is imported in ``__init__`` only, so this module (and the CSV path)
imports without it. ``benchmarks/xlsx_libraries.py`` measured it at about twice
openpyxl's ``write_only`` speed, at the same flat memory.

In constant-memory mode xlsxwriter flushes a row to a temporary file as soon as
a later row is written, so every sheet here is written strictly top to bottom.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..charts import Chart
from .base import ReportWriter
from .cells import cell_text, humanize, layout_summary, to_local_naive, usable_charts
from .csv import FORMULA_TRIGGERS, neutralize_text

#: Excel keeps 15 significant digits: larger integers are written as text to keep every digit.
MAX_EXACT_INT = 10**15 - 1
#: Excel's cell limit, in UTF-16 code units.
MAX_CELL_UTF16 = 32_767
CHART_TYPES = {"bar": "column", "line": "line", "pie": "pie"}
#: Rows between the tops of two charts stacked on the Summary sheet.
CHART_ROWS = 18


class XLSXWriter(ReportWriter):
    """Sheet "Report" with a bold, frozen, filterable header and typed cells; then "Summary".

    Rows beyond ``max_rows_per_sheet`` (Excel's 1,048,576, header included)
    continue on "Report (2)", "Report (3)"... each with the header repeated.
    """

    format = "xlsx"
    extension = "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    label = "Excel (XLSX)"
    requires = ("xlsxwriter",)
    extra = "xlsx"

    #: Rows per sheet, header included; a class attribute so tests can lower it.
    max_rows_per_sheet = 1_048_576
    sheet_name = "Report"
    summary_sheet_name = "Summary"
    min_width = 8
    max_width = 60

    def __init__(self, fileobj: Any, **kwargs: Any) -> None:
        super().__init__(fileobj, **kwargs)
        import xlsxwriter

        self.workbook = xlsxwriter.Workbook(
            fileobj,
            {
                "constant_memory": True,
                # Text stays text: never a formula, a hyperlink or a number.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                # NaN and infinities are written as text before they get here; were
                # one to slip through, an error cell rather than an exception.
                "nan_inf_to_errors": True,
                # Aware datetimes are converted to the current Django time zone
                # (timezone.localtime) before they get here; this is the safety net.
                "remove_timezone": True,
            },
        )
        if self.context.title:
            self.workbook.set_properties({"title": self.context.title})
        add = self.workbook.add_format
        self.bold = add({"bold": True})
        self.title_format = add({"bold": True, "font_size": 14})
        self.formats = {
            "date": add({"num_format": "yyyy-mm-dd"}),
            "datetime": add({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            "time": add({"num_format": "hh:mm:ss"}),
            "duration": add({"num_format": "[h]:mm:ss"}),
        }
        self.columns: list[str] = []
        self.widths: list[int] | None = None
        self.sheets: list[Any] = []
        self.sheet: Any = None
        self.next_row = 0
        #: Data rows written on the first sheet: what charts over rows can reference.
        self.first_sheet_rows = 0
        self.charts: list[Chart] = []
        self.closed = False

    # -- rows ----------------------------------------------------------------
    def write_header(self, columns: Sequence[str]) -> None:
        self.columns = [str(column) for column in columns]
        self.charts = usable_charts(self.context.charts, self.columns)
        self._add_report_sheet()

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self.widths is None and rows:
            self._set_widths(rows)
        sheet, row_number, limit = self.sheet, self.next_row, self.max_rows_per_sheet
        write = self._write_value
        for row in rows:
            if row_number >= limit:
                self.next_row = row_number
                self._add_report_sheet()
                sheet, row_number = self.sheet, self.next_row
            for col, value in enumerate(row):
                if value is not None:
                    write(sheet, row_number, col, value)
            row_number += 1
        if len(self.sheets) == 1:
            self.first_sheet_rows = row_number - 1
        self.next_row = row_number

    def _add_report_sheet(self) -> None:
        if self.sheet is not None:
            self._finish_report_sheet()
        if len(self.sheets) == 1:
            self.first_sheet_rows = self.next_row - 1
        number = len(self.sheets) + 1
        name = self.sheet_name if number == 1 else f"{self.sheet_name} ({number})"
        sheet = self.workbook.add_worksheet(name)
        sheet.freeze_panes(1, 0)
        for col, column in enumerate(self.columns):
            # Column names are text like any other: neutralised, never a formula.
            self._write_text(sheet, 0, col, column, self.bold)
        if self.widths is not None:
            self._apply_widths(sheet)
        self.sheets.append(sheet)
        self.sheet = sheet
        self.next_row = 1

    def _finish_report_sheet(self) -> None:
        if self.widths is None:  # No rows at all: widths from the header alone.
            self._set_widths([])
        if self.columns:
            self.sheet.autofilter(0, 0, max(self.next_row - 1, 0), len(self.columns) - 1)

    def _set_widths(self, rows: Sequence[Sequence[Any]]) -> None:
        """Column widths from the header and the first chunk, clamped; every sheet gets them."""
        widths = [len(column) + 3 for column in self.columns]  # + the filter button
        for row in rows:
            for col, value in enumerate(row[: len(widths)]):
                widths[col] = max(widths[col], _display_width(value))
        self.widths = [min(max(width, self.min_width), self.max_width) for width in widths]
        self._apply_widths(self.sheet)

    def _apply_widths(self, sheet: Any) -> None:
        for col, width in enumerate(self.widths or ()):
            sheet.set_column(col, col, width)

    def _write_value(self, sheet: Any, row: int, col: int, value: Any) -> None:
        """One cell in its native Excel type; text is always written as text."""
        kind = type(value)
        if kind is str:
            self._write_text(sheet, row, col, value)
        elif kind is int:
            if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
                sheet.write_number(row, col, value)
            else:
                self._write_text(sheet, row, col, str(value))
        elif kind is float:
            if math.isfinite(value):
                sheet.write_number(row, col, value)
            else:  # xlsxwriter's error cells for these are formulas (=1/0): text instead
                self._write_text(sheet, row, col, str(value))
        elif kind is Decimal:
            if value.is_finite():
                sheet.write_number(row, col, float(value))
            else:  # "-Infinity", "NaN": text, neutralised like any other
                self._write_text(sheet, row, col, str(value))
        else:
            self._write_other(sheet, row, col, value)

    def _write_other(self, sheet: Any, row: int, col: int, value: Any) -> None:
        # Order matters: bool is an int, datetime is a date.
        if isinstance(value, bool):
            sheet.write_boolean(row, col, value)
        elif isinstance(value, (int, float, Decimal)):
            # Subclasses (IntEnum, ...) land here after missing the exact-type fast path.
            number = int(value) if isinstance(value, int) else float(value)
            self._write_value(sheet, row, col, number)
        elif isinstance(value, datetime.datetime):
            value = to_local_naive(value)
            if value.year < 1900:  # Before Excel's epoch: no date serial exists.
                self._write_text(sheet, row, col, value.isoformat(sep=" "))
            else:
                sheet.write_datetime(row, col, value, self.formats["datetime"])
        elif isinstance(value, datetime.date):
            if value.year < 1900:
                self._write_text(sheet, row, col, value.isoformat())
            else:
                sheet.write_datetime(row, col, value, self.formats["date"])
        elif isinstance(value, datetime.time):
            sheet.write_datetime(row, col, value.replace(tzinfo=None), self.formats["time"])
        elif isinstance(value, datetime.timedelta):
            sheet.write_datetime(row, col, value, self.formats["duration"])
        elif isinstance(value, str):
            self._write_text(sheet, row, col, str(value))
        elif isinstance(value, uuid.UUID):
            sheet.write_string(row, col, str(value))
        else:
            self._write_text(sheet, row, col, cell_text(value))

    def _write_text(
        self, sheet: Any, row: int, col: int, text: str, cell_format: Any = None
    ) -> None:
        if self.neutralize_formulas and text.startswith(FORMULA_TRIGGERS):
            text = neutralize_text(text)
        if len(text) > MAX_CELL_UTF16 // 2:
            text = _truncate_utf16(text, MAX_CELL_UTF16)
        if text.startswith("<r>") and text.endswith("</r>"):
            # xlsxwriter (3.3) copies a constant-memory string of this shape into
            # the sheet XML unescaped, taking it for one of its own rich strings:
            # user data could inject XML or corrupt the file. Written as a rich
            # string of three plain runs, it is escaped and reads back unchanged.
            runs = [text[:1], text[1:2], text[2:]]
            sheet.write_rich_string(row, col, *runs, *([cell_format] if cell_format else []))
        else:
            sheet.write_string(row, col, text, cell_format)

    # -- summary -------------------------------------------------------------
    def write_summary(self, summary: Mapping[str, Any] | None, row_count: int) -> None:
        """Sheet "Summary": context, parameters, figures, summary tables, then the charts."""
        if self.sheet is None:
            self.write_header([])
        context = self.context
        sheet = self.workbook.add_worksheet(self.summary_sheet_name)
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 8, 16)
        lines = _Lines(self, sheet)

        lines.text(context.title or context.label or context.report_type or "Report", fmt="title")
        subtitle = " · ".join(v for v in (context.label, context.report_type) if v)
        if subtitle and subtitle != context.title:
            lines.text(subtitle)
        if context.generated_at is not None:
            lines.pair("Generated", context.generated_at)
        lines.skip()

        lines.text("Parameters", fmt="bold")
        if context.parameters:
            for key, value in context.parameters.items():
                lines.pair(str(key), value if _is_scalar(value) else cell_text(value))
        else:
            lines.text("None")
        lines.skip()

        layout = layout_summary(summary)
        lines.text("Figures", fmt="bold")
        lines.pair("Rows", row_count)
        for label, value in layout.figures:
            lines.pair(label, value if _is_scalar(value) else cell_text(value))
        for table in layout.tables:
            lines.skip()
            lines.text(table.title, fmt="bold")
            if any(table.columns):
                lines.row(table.columns, fmt="bold")
            for values in table.rows:
                lines.row([v if _is_scalar(v) else cell_text(v) for v in values])

        # Charts go right of every table written on this sheet, stacked from the top.
        widths = [len(t.columns) for t in layout.tables]
        widths += [len(c.series_names()) + 1 for c in self.charts if c.source == "summary"]
        chart_col = max([2, *widths]) + 1
        for position, chart in enumerate(self.charts):
            self._add_chart(chart, summary, lines, (position * CHART_ROWS, chart_col))

    def _add_chart(
        self,
        chart: Chart,
        summary: Mapping[str, Any] | None,
        lines: _Lines,
        at: tuple[int, int],
    ) -> None:
        names = chart.series_names()
        # Each series is named by a reference to its header cell, whose text was
        # written (neutralised) above: xlsxwriter reads a name such as "x!A1" or
        # "=x!A1" as a reference of its own, so a plain name is never handed over.
        name_row = 0
        if chart.source == "rows":
            count = min(chart.max_points, self.first_sheet_rows)
            sheet_name, first, last = self.sheet_name, 1, count
            category_col = self.columns.index(chart.category)
            value_cols = [self.columns.index(v) for v in chart.values]
        else:
            # Summary data is written as a small table here and the chart refers to it.
            points = chart.points_from_summary(summary)
            count = len(points)
            lines.skip()
            lines.text(f"Chart data: {chart.title}", fmt="bold")
            lines.row([humanize(chart.category) if chart.category else "", *names], fmt="bold")
            name_row = lines.next_row - 1
            first = lines.next_row
            for label, numbers in points:
                lines.row([label, *numbers])
            sheet_name, last = self.summary_sheet_name, lines.next_row - 1
            category_col, value_cols = 0, list(range(1, len(names) + 1))
        if count == 0:
            lines.skip()
            lines.text(f"{chart.title}: no data to chart.")
            return

        excel_chart = self.workbook.add_chart({"type": CHART_TYPES[chart.kind]})
        for col in value_cols:
            series: dict[str, Any] = {
                "name": [sheet_name, name_row, col],
                "categories": [sheet_name, first, category_col, last, category_col],
                "values": [sheet_name, first, col, last, col],
            }
            if chart.kind == "pie":
                series["data_labels"] = {"percentage": True}
            excel_chart.add_series(series)
        excel_chart.set_title({"name": chart.title})
        if chart.kind != "pie":
            if len(names) == 1:
                excel_chart.set_legend({"none": True})
            if chart.category:
                excel_chart.set_x_axis({"name": humanize(chart.category)})
        lines.sheet.insert_chart(at[0], at[1], excel_chart)

    def close(self) -> None:
        """Write the workbook into the file object, which stays open."""
        if self.closed:
            return
        self.closed = True
        if self.sheet is not None:
            self._finish_report_sheet()
        self.workbook.close()


class _Lines:
    """Writes a sheet top to bottom, as constant-memory mode requires."""

    def __init__(self, writer: XLSXWriter, sheet: Any) -> None:
        self.writer = writer
        self.sheet = sheet
        self.next_row = 0

    def _format(self, fmt: str | None) -> Any:
        return {"bold": self.writer.bold, "title": self.writer.title_format}.get(fmt or "")

    def text(self, text: str, fmt: str | None = None) -> None:
        self.writer._write_text(self.sheet, self.next_row, 0, text, self._format(fmt))
        self.next_row += 1

    def pair(self, label: str, value: Any) -> None:
        self.row([label, value], label_format=self.writer.bold)

    def row(self, values: Sequence[Any], fmt: str | None = None, label_format: Any = None) -> None:
        cell_format = self._format(fmt)
        for col, value in enumerate(values):
            if value is None:
                continue
            if cell_format is not None or (col == 0 and label_format is not None):
                self.writer._write_text(
                    self.sheet, self.next_row, col, cell_text(value), cell_format or label_format
                )
            else:
                self.writer._write_value(self.sheet, self.next_row, col, value)
        self.next_row += 1

    def skip(self) -> None:
        self.next_row += 1


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list, tuple, set, frozenset))


def _display_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime.datetime):
        return 19
    if isinstance(value, datetime.date):
        return 10
    text = value if isinstance(value, str) else str(value)
    # The longest line of a multi-line cell, not the whole text.
    return max(map(len, text.splitlines())) if "\n" in text else len(text)


def _truncate_utf16(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 code units (Excel's measure), never inside a pair."""
    encoded = text.encode("utf-16-le")
    if len(encoded) <= limit * 2:
        return text
    return encoded[: limit * 2].decode("utf-16-le", "ignore")
