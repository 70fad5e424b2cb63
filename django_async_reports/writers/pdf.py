"""PDF summary writer on reportlab: context, figures, charts and the first rows, not every row.

A PDF of a million rows is of no use to anyone; this one is the document a
person reads. The writer keeps only the preview rows (as text) and the points
of the charts over rows; every other row is counted and dropped. The document
is built in ``close()``, once the summary and the row count are known.

Everything user-supplied (cells, parameters, summary, titles) is escaped before
it reaches a ``Paragraph``, so it is shown as text and never read as markup.
The built-in Helvetica font is used: it covers Western and Central European
scripts, not CJK or emoji.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone

from ..charts import Chart
from .base import ReportWriter
from .cells import cell_text, humanize, layout_summary, usable_charts

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7")
MAX_PIE_SLICES = 12
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# An amount written as a string: digits, a point, digits (not ids, years or dates).
_AMOUNT = re.compile(r"-?\d+\.\d+")


class PDFWriter(ReportWriter):
    """A readable summary: title, parameters, figures, charts, and a preview of the rows."""

    format = "pdf"
    extension = "pdf"
    content_type = "application/pdf"
    label = "PDF summary"
    requires = ("reportlab",)
    extra = "pdf"

    #: More columns than this and the pages turn to landscape.
    landscape_after_columns = 6
    #: Preview columns shown at most; narrower than this they cannot be read.
    max_preview_columns = 16
    #: Characters kept of one preview cell.
    max_cell_chars = 300
    #: Rows shown of one summary table.
    max_summary_rows = 100

    def __init__(self, fileobj: Any, **kwargs: Any) -> None:
        super().__init__(fileobj, **kwargs)
        import reportlab  # noqa: F401  (fail here, not in close(), when the extra is missing)

        from ..conf import report_settings

        self.preview_limit = max(int(report_settings.PDF_PREVIEW_ROWS), 0)
        self.columns: list[str] = []
        self.preview: list[list[str]] = []
        self.row_count = 0
        self.charts: list[Chart] = []
        #: Points of the charts over rows, by position in ``self.charts``.
        self.row_points: dict[int, list[tuple[str, list[float]]]] = {}
        self.summary: Mapping[str, Any] | None = None
        self.closed = False

    # -- streaming -----------------------------------------------------------
    def write_header(self, columns: Sequence[str]) -> None:
        self.columns = [str(column) for column in columns]
        self.charts = usable_charts(self.context.charts, self.columns)
        self.row_points = {i: [] for i, c in enumerate(self.charts) if c.source == "rows"}

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        self.row_count += len(rows)
        room = self.preview_limit - len(self.preview)
        if room > 0:
            limit = self.max_cell_chars + 1
            self.preview += [[cell_text(v)[:limit] for v in row] for row in rows[:room]]
        for position, points in self.row_points.items():
            chart = self.charts[position]
            room = chart.max_points - len(points)
            if room > 0:
                points += chart.points_from_rows(self.columns, rows[:room])

    def write_summary(self, summary: Mapping[str, Any] | None, row_count: int) -> None:
        self.summary = summary
        self.row_count = row_count

    def close(self) -> None:
        """Lay out and write the whole document; the file object stays open."""
        if self.closed:
            return
        self.closed = True
        from reportlab.platypus.doctemplate import LayoutError

        try:
            _Document(self).build()
        except LayoutError as exc:
            # Cells are bounded, so this should not happen; if it does, it would
            # happen again on every retry: fail the report at once (ValueError).
            raise ValueError(f"The PDF summary could not be laid out: {exc}") from exc


class _Document:
    """The reportlab story of one PDFWriter, built once in ``close()``."""

    def __init__(self, writer: PDFWriter) -> None:
        from reportlab.lib import colors
        from reportlab.lib.pagesizes import A4, landscape
        from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
        from reportlab.lib.units import mm

        self.writer = writer
        self.colors = colors
        self.context = writer.context
        wide = len(writer.columns) > writer.landscape_after_columns
        self.pagesize = landscape(A4) if wide else A4
        self.margin = 15 * mm
        self.width = self.pagesize[0] - 2 * self.margin
        styles = getSampleStyleSheet()
        self.styles = {
            "title": styles["Title"],
            "subtitle": ParagraphStyle("subtitle", parent=styles["Normal"], fontSize=11),
            "h2": styles["Heading2"],
            "h3": ParagraphStyle("h3", parent=styles["Heading3"], keepWithNext=1),
            "body": styles["BodyText"],
            "note": ParagraphStyle(
                "note", parent=styles["BodyText"], fontSize=8, textColor=colors.grey
            ),
            "cell": ParagraphStyle("cell", parent=styles["BodyText"], fontSize=8, leading=9.5),
            "head": ParagraphStyle(
                "head",
                parent=styles["BodyText"],
                fontSize=8,
                leading=9.5,
                fontName="Helvetica-Bold",
            ),
        }
        self.title = (
            self.context.title or self.context.label or self.context.report_type or "Report"
        )

    def build(self) -> None:
        from reportlab.platypus import SimpleDocTemplate

        doc = SimpleDocTemplate(
            self.writer.fileobj,
            pagesize=self.pagesize,
            leftMargin=self.margin,
            rightMargin=self.margin,
            topMargin=self.margin,
            bottomMargin=self.margin,
            title=self.title,
            subject=self.context.label or self.context.report_type,
            creator="django-async-reports",
        )
        story = self.heading() + self.parameters() + self.figures() + self.charts()
        story += self.rows()
        doc.build(story, onFirstPage=self.footer, onLaterPages=self.footer)

    # -- building blocks -----------------------------------------------------
    def section(self, title: str) -> list[Any]:
        """A section heading, on a new page when less than a few lines are left on this one."""
        from reportlab.platypus import CondPageBreak

        return [CondPageBreak(120), self.p(title, "h2")]

    def p(self, text: str, style: str = "body") -> Any:
        """A Paragraph showing ``text`` literally: escaped, control characters dropped."""
        from reportlab.platypus import Paragraph

        safe = escape(_CONTROL.sub("", text)).replace("\n", "<br/>")
        return Paragraph(safe, self.styles[style])

    def table(
        self, header: Sequence[str] | None, rows: list[list[str]], widths: list[float]
    ) -> Any:
        from reportlab.platypus import Table, TableStyle

        colors = self.colors
        data = [[self.p(_fit(text), "head") for text in header]] if header else []
        data += [[self.p(_fit(text), "cell") for text in row] for row in rows]
        table = Table(data, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
        commands: list[tuple[Any, ...]] = [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.lightgrey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ("ROWBACKGROUNDS", (0, 1 if header else 0), (-1, -1), [colors.white, "#f4f6f8"]),
        ]
        if header:
            commands.append(("BACKGROUND", (0, 0), (-1, 0), "#dde3ea"))
        table.setStyle(TableStyle(commands))
        return table

    def pairs(self, items: list[tuple[str, str]]) -> Any:
        return self.table(
            None, [list(item) for item in items], [self.width * 0.35, self.width * 0.65]
        )

    def heading(self) -> list[Any]:
        from reportlab.platypus import Spacer

        context = self.context
        story = [self.p(_fit(self.title, lines=3), "title")]
        subtitle = " · ".join(v for v in (context.label, context.report_type) if v)
        if subtitle and subtitle != self.title:
            story.append(self.p(subtitle, "subtitle"))
        if context.generated_at is not None:
            zone = timezone.get_current_timezone_name()
            story.append(self.p(f"Generated {cell_text(context.generated_at)} ({zone})", "note"))
        story.append(Spacer(1, 6))
        return story

    def parameters(self) -> list[Any]:
        story = self.section("Parameters")
        if self.context.parameters:
            items = [(str(k), cell_text(v)) for k, v in self.context.parameters.items()]
            story.append(self.pairs(items))
        else:
            story.append(self.p("None."))
        return story

    def figures(self) -> list[Any]:
        layout = layout_summary(self.writer.summary)
        items = [("Rows", f"{self.writer.row_count:,}")]
        items += [(label, _figure(value)) for label, value in layout.figures]
        story = [*self.section("Figures"), self.pairs(items)]
        limit = self.writer.max_summary_rows
        for table in layout.tables:
            header = table.columns if any(table.columns) else None
            rows = [[_figure(v) for v in row] for row in table.rows[:limit]]
            width = self.width / max(len(table.columns), 1)
            story += [
                self.p(table.title, "h3"),
                self.table(header, rows, [width] * len(table.columns)),
            ]
            if len(table.rows) > limit:
                story.append(self.p(f"Showing the first {limit} of {len(table.rows):,}.", "note"))
        return story

    def charts(self) -> list[Any]:
        from reportlab.platypus import KeepTogether

        writer = self.writer
        if not writer.charts:
            return []
        story: list[Any] = []
        for position, chart in enumerate(writer.charts):
            if chart.source == "rows":
                points = writer.row_points.get(position, [])
            else:
                points = chart.points_from_summary(writer.summary)
            drawing = _drawing(chart, points, min(self.width, 170 * 72 / 25.4), self.colors)
            body = drawing if drawing is not None else self.p("No data to chart.", "note")
            # The section heading stays with the first chart, each title with its chart.
            heading = [] if story else self.section("Charts")
            story.append(KeepTogether([*heading, self.p(chart.title, "h3"), body]))
        return story

    def rows(self) -> list[Any]:
        writer = self.writer
        story = self.section("Rows")
        total, shown = writer.row_count, len(writer.preview)
        if total == 0:
            return [*story, self.p("The report has no rows.")]
        if not shown or not writer.columns:
            return [*story, self.p(f"The report has {total:,} rows; none is previewed here.")]
        columns = writer.columns[: writer.max_preview_columns]
        width = self.width / len(columns)
        # Bound every cell to about six lines so that no row outgrows a page.
        per_line = max(int(width / (8 * 0.5)), 4)
        limit = min(writer.max_cell_chars, per_line * 6)
        rows = [[_clip(text, limit) for text in row[: len(columns)]] for row in writer.preview]
        # "average order value" wraps between words where "average_order_value" would break.
        header = [humanize(column) for column in columns]
        story.append(self.table(header, rows, [width] * len(columns)))
        if shown < total:
            note = f"Showing the first {shown:,} of {total:,} rows."
        else:
            note = f"Showing all {total:,} rows."
        if len(columns) < len(writer.columns):
            note += (
                f" Only the first {len(columns)} of {len(writer.columns)} columns fit;"
                " the XLSX, CSV and JSON formats hold them all."
            )
        story.append(self.p(note, "note"))
        return story

    def footer(self, canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(self.colors.grey)
        text = _CONTROL.sub("", self.title)[:120]
        canvas.drawString(self.margin, self.margin / 2, text)
        canvas.drawRightString(self.pagesize[0] - self.margin, self.margin / 2, f"Page {doc.page}")
        canvas.restoreState()


def _figure(value: Any) -> str:
    """A summary value as read in the PDF: thousands separators on counts and amounts.

    Amounts kept as strings to stay exact ("336544.68", as JSON has no
    decimal type) read like the numbers they are; other strings are untouched.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Decimal) or (isinstance(value, str) and _AMOUNT.fullmatch(value)):
        amount = Decimal(value)
        return f"{amount:,}"
    return cell_text(value)


#: Any table cell (parameters, figures, summary tables, the preview) is cut to
#: this many characters and lines, so that no cell outgrows a page: a parameter
#: holding a list of 1,500 ids would otherwise stop the layout.
MAX_CELL_CHARS = 600
MAX_CELL_LINES = 8


def _fit(text: str, *, chars: int = MAX_CELL_CHARS, lines: int = MAX_CELL_LINES) -> str:
    text = str(text)
    if text.count("\n") >= lines:
        text = "\n".join(text.split("\n")[:lines]) + "…"
    return _clip(text, chars)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _drawing(chart: Chart, points: list[tuple[str, list[float]]], width: float, colors: Any) -> Any:
    """A reportlab Drawing of ``chart``, or None when there is nothing to draw."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.charts.linecharts import HorizontalLineChart
    from reportlab.graphics.charts.piecharts import Pie
    from reportlab.graphics.shapes import Drawing

    palette = [colors.HexColor(c) for c in PALETTE]
    names = chart.series_names()
    height = 200.0
    drawing = Drawing(width, height)

    if chart.kind == "pie":
        slices = [(label, values[0]) for label, values in points if values and values[0] > 0]
        if not slices:
            return None
        if len(slices) > MAX_PIE_SLICES:
            # A pie of a hundred slices is unreadable: the largest ones, then "Other".
            slices.sort(key=lambda item: item[1], reverse=True)
            rest = sum(value for _, value in slices[MAX_PIE_SLICES - 1 :])
            slices = [*slices[: MAX_PIE_SLICES - 1], ("Other", rest)]
        pie = Pie()
        pie.x, pie.y, pie.width, pie.height = 20, 10, height - 20, height - 20
        pie.data = [value for _, value in slices]
        pie.labels = None
        pie.simpleLabels = 1
        pie.slices.strokeWidth = 0.5
        pie.slices.strokeColor = colors.white
        for i in range(len(slices)):
            pie.slices[i].fillColor = palette[i % len(palette)]
        drawing.add(pie)
        total = sum(pie.data)
        legend_items = [
            (palette[i % len(palette)], f"{_short(label, 28)}  {value:,.10g} ({value / total:.0%})")
            for i, (label, value) in enumerate(slices)
        ]
        drawing.add(_legend(Legend, legend_items, x=230, y=height - 15, rows=14))
        return drawing

    if not points:
        return None
    labels = [_short(label, 14) for label, _ in points]
    step = max(len(labels) // 20, 1)
    labels = [label if i % step == 0 else "" for i, label in enumerate(labels)]
    data = [[values[i] for _, values in points] for i in range(len(names))]
    low = min(0.0, *(min(series) for series in data))
    high = max(0.0, *(max(series) for series in data))
    plot: Any = VerticalBarChart() if chart.kind == "bar" else HorizontalLineChart()
    legend_width = 130 if len(names) > 1 else 0
    plot.x, plot.y = 50, 60
    plot.width, plot.height = width - 70 - legend_width, height - 75
    plot.data = data
    plot.valueAxis.valueMin = low
    plot.valueAxis.valueMax = high if high > low else low + 1
    plot.valueAxis.labels.fontSize = 7
    plot.categoryAxis.categoryNames = labels
    plot.categoryAxis.joinAxisMode = "bottom"  # labels under the plot, even below zero
    plot.categoryAxis.labels.fontSize = 7
    if len(points) > 6:
        plot.categoryAxis.labels.angle = 45
        plot.categoryAxis.labels.boxAnchor = "ne"
        plot.categoryAxis.labels.dx = 0
        plot.categoryAxis.labels.dy = -2
    for i in range(len(names)):
        color = palette[i % len(palette)]
        if chart.kind == "bar":
            plot.bars[i].fillColor = color
            plot.bars[i].strokeColor = color
        else:
            plot.lines[i].strokeColor = color
            plot.lines[i].strokeWidth = 1.5
    drawing.add(plot)
    if len(names) > 1:
        items = [(palette[i % len(palette)], _short(n, 24)) for i, n in enumerate(names)]
        drawing.add(_legend(Legend, items, x=width - legend_width + 5, y=height - 15, rows=12))
    return drawing


def _legend(
    legend_class: Any, items: list[tuple[Any, str]], *, x: float, y: float, rows: int
) -> Any:
    legend = legend_class()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.fontSize = 7
    legend.boxAnchor = "nw"
    legend.columnMaximum = rows
    legend.dx = legend.dy = 7
    legend.deltay = 10
    legend.colorNamePairs = items
    return legend


def _short(text: str, limit: int) -> str:
    text = _CONTROL.sub("", str(text)).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
