"""Every output format, written to memory and read back by the library that opens it."""

import datetime
import io
import json
import uuid
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from pypdf import PdfReader

from django_async_reports import Chart, services
from django_async_reports.storage import report_storage
from django_async_reports.writers import (
    JSONWriter,
    NDJSONWriter,
    PDFWriter,
    ReportContext,
    XLSXWriter,
    available_formats,
    get_writer_class,
)
from tests.factories import ReportFactory
from tests.helpers import fresh_python_output
from tests.testapp.reports import ChartedReport

UTC = datetime.timezone.utc
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def write(writer_class, columns, chunks, summary=None, context=None, **kwargs):
    """Drive a writer as the service does: header, chunks, summary once, close."""
    buffer = io.BytesIO()
    writer = writer_class(buffer, context=context, **kwargs)
    writer.write_header(columns)
    count = 0
    for chunk in chunks:
        writer.write_rows(chunk)
        count += len(chunk)
    writer.write_summary(summary, count)
    writer.close()
    assert not buffer.closed
    return buffer.getvalue()


def charted_context(**overrides):
    values = {
        "title": "January sales",
        "report_type": "charted",
        "label": "Charted sales",
        "parameters": {"region": "north", "statuses": ["paid", "shipped"]},
        "generated_at": datetime.datetime(2026, 1, 31, 17, 45, tzinfo=UTC),
        "charts": tuple(ChartedReport.charts),
    }
    values.update(overrides)
    return ReportContext(**values)


CHARTED_SUMMARY = {
    "regions": 3,
    "total_revenue": "1334.49",
    "orders_by_status": {"paid": 15, "shipped": 4},
}


def test_registry_knows_every_format_and_its_metadata():
    expected = {
        "xlsx": (XLSXWriter, "xlsx", XLSX_TYPE, ("xlsxwriter",), "xlsx"),
        "json": (JSONWriter, "json", "application/json", (), ""),
        "ndjson": (NDJSONWriter, "ndjson", "application/x-ndjson", (), ""),
        "pdf": (PDFWriter, "pdf", "application/pdf", ("reportlab",), "pdf"),
    }
    for fmt, (cls, extension, content_type, requires, extra) in expected.items():
        assert get_writer_class(fmt) is cls
        assert (cls.extension, cls.content_type, cls.requires, cls.extra) == (
            extension,
            content_type,
            requires,
            extra,
        )
        assert cls.label
    assert set(available_formats()) == {"csv", "xlsx", "json", "ndjson", "pdf"}


# -- XLSX ----------------------------------------------------------------------------------------
class TestXLSX:
    COLUMNS = ["id", "amount", "ratio", "day", "at", "naive", "clock", "ok", "empty", "ref", "big"]

    def rows(self):
        ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
        return [
            (
                1,
                Decimal("1234.50"),
                0.25,
                datetime.date(2026, 1, 5),
                datetime.datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
                datetime.datetime(2026, 1, 5, 8, 30, 15),
                datetime.time(13, 45),
                True,
                None,
                ref,
                12345678901234567890,
            ),
            (
                2,
                Decimal("-0.01"),
                -1.5,
                datetime.date(1899, 12, 31),
                None,
                None,
                None,
                False,
                None,
                "Zoë ✓",
                -7,
            ),
        ]

    def test_native_types_header_freeze_and_filter(self, settings):
        settings.TIME_ZONE = "Europe/Paris"
        data = write(XLSXWriter, self.COLUMNS, [self.rows()])
        sheet = openpyxl.load_workbook(io.BytesIO(data))["Report"]
        values = [[cell.value for cell in row] for row in sheet.iter_rows()]
        assert values[0] == self.COLUMNS
        assert values[1] == [
            1,
            1234.5,
            0.25,
            datetime.datetime(2026, 1, 5),
            # Aware datetimes are shown in the current time zone (UTC+1), without tzinfo.
            datetime.datetime(2026, 1, 5, 9, 30),
            datetime.datetime(2026, 1, 5, 8, 30, 15),
            datetime.time(13, 45),
            True,
            None,
            "12345678-1234-5678-1234-567812345678",
            # More digits than Excel keeps: written as text so none is lost.
            "12345678901234567890",
        ]
        # Before 1900 Excel has no date serial: ISO text instead of a wrong date.
        assert values[2][:9] == [2, -0.01, -1.5, "1899-12-31", None, None, None, False, None]
        assert values[2][9:] == ["Zoë ✓", -7]

        types = [cell.data_type for cell in sheet[2]]
        assert types[:3] == ["n", "n", "n"] and types[3:6] == ["d", "d", "d"]
        assert types[7] == "b" and types[9:] == ["s", "s"]
        assert sheet["D2"].number_format == "yyyy-mm-dd"
        assert sheet["E2"].number_format == "yyyy-mm-dd hh:mm:ss"
        assert sheet["G2"].number_format == "hh:mm:ss"
        assert all(cell.font.b for cell in sheet[1])
        assert not sheet["A2"].font.b
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == "A1:K3"

    def test_column_widths_from_header_and_first_chunk_clamped(self):
        rows = [(1, "x" * 200, "medium length text")]
        data = write(XLSXWriter, ["n", "long", "mid"], [rows, [(2, "y" * 500, "z" * 90)]])
        sheet = openpyxl.load_workbook(io.BytesIO(data))["Report"]
        widths = {c: round(sheet.column_dimensions[c].width) for c in "ABC"}
        # Clamped to 8..60 (Excel adds a little padding); the second chunk is not sampled.
        assert 8 <= widths["A"] <= 9
        assert 60 <= widths["B"] <= 61
        assert 18 <= widths["C"] <= 19

    def test_formula_looking_text_is_neutralised_and_never_a_formula(self):
        cells = ["=1+1", "+SUM(A1:A2)", "-cmd|' /C calc'!A0", "@SUM(1)", "-12.5", "plain"]
        data = write(XLSXWriter, [f"c{i}" for i in range(6)], [[cells]])
        sheet = openpyxl.load_workbook(io.BytesIO(data))["Report"]
        row = list(sheet[2])
        assert [c.value for c in row] == [
            "'=1+1",
            "'+SUM(A1:A2)",
            "'-cmd|' /C calc'!A0",
            "'@SUM(1)",
            "-12.5",
            "plain",
        ]
        assert {c.data_type for c in row} == {"s"}

        raw = write(XLSXWriter, ["a"], [[["=1+1"]]], neutralize_formulas=False)
        cell = openpyxl.load_workbook(io.BytesIO(raw))["Report"]["A2"]
        assert (cell.value, cell.data_type) == ("=1+1", "s")
        sheet_xml = zipfile.ZipFile(io.BytesIO(raw)).read("xl/worksheets/sheet1.xml")
        assert b"<f>" not in sheet_xml

    def test_text_shaped_like_xml_is_escaped_not_injected(self):
        # xlsxwriter copies "<r>...</r>" strings raw into the sheet XML in
        # constant-memory mode; the writer routes them through an escaped path.
        cells = ["<r><t>injected</t></r>", "<r>a & b</r>", "<b>bold</b>"]
        data = write(XLSXWriter, ["a", "b", "c"], [[cells]])
        sheet = openpyxl.load_workbook(io.BytesIO(data))["Report"]
        assert [c.value for c in sheet[2]] == cells

    def test_text_longer_than_excel_allows_is_truncated(self):
        data = write(XLSXWriter, ["text"], [[["é" * 40_000], ["🙂" * 20_000]]])
        sheet = openpyxl.load_workbook(io.BytesIO(data))["Report"]
        assert sheet["A2"].value == "é" * 32_767
        # Emoji count two UTF-16 units each, Excel's measure; no pair is cut in half.
        assert sheet["A3"].value == "🙂" * 16_383

    def test_rows_beyond_the_sheet_limit_continue_on_new_sheets(self, monkeypatch):
        monkeypatch.setattr(XLSXWriter, "max_rows_per_sheet", 4)  # header + 3 rows
        chunks = [[(i, f"row {i}") for i in range(start, start + 3)] for start in (1, 4, 7)]
        chunks[-1] = chunks[-1][:2]  # 8 rows in all
        data = write(XLSXWriter, ["n", "name"], chunks)
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert book.sheetnames == ["Report", "Report (2)", "Report (3)", "Summary"]
        seen = []
        for name in book.sheetnames[:3]:
            sheet = book[name]
            rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
            assert rows[0] == ["n", "name"]
            assert sheet.freeze_panes == "A2"
            assert sheet.auto_filter.ref == f"A1:B{len(rows)}"
            seen += [row[0] for row in rows[1:]]
        assert seen == list(range(1, 9))
        summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
        assert summary["Rows"] == 8

    def test_summary_sheet_has_context_figures_tables_and_native_charts(self):
        rows = [list(row) for row in ChartedReport.ROWS]
        data = write(XLSXWriter, ChartedReport.columns, [rows], CHARTED_SUMMARY, charted_context())
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert book.sheetnames == ["Report", "Summary"]
        summary = book["Summary"]
        lines = [[v for v in row if v is not None] for row in summary.iter_rows(values_only=True)]
        assert lines[0] == ["January sales"]
        assert lines[1] == ["Charted sales · charted"]
        assert lines[2] == ["Generated", datetime.datetime(2026, 1, 31, 17, 45)]
        assert ["region", "north"] in lines
        assert ["statuses", "paid, shipped"] in lines
        assert ["Rows", 3] in lines
        assert ["Regions", 3] in lines
        # Decimal strings of a summary stay text: they are exact that way.
        assert ["Total revenue", "1334.49"] in lines
        at = lines.index(["Orders by status"])
        assert lines[at + 1 : at + 4] == [["", "Value"], ["paid", 15], ["shipped", 4]]
        assert ["Chart data: Orders per status"] in lines
        assert summary["A1"].font.b
        assert len(summary._charts) == 3

        archive = zipfile.ZipFile(io.BytesIO(data))
        charts = {
            name: archive.read(name).decode()
            for name in archive.namelist()
            if name.startswith("xl/charts/chart")
        }
        assert len(charts) == 3
        bar = next(xml for xml in charts.values() if "<c:barChart>" in xml)
        line = next(xml for xml in charts.values() if "<c:lineChart>" in xml)
        pie = next(xml for xml in charts.values() if "<c:pieChart>" in xml)
        assert '<c:barDir val="col"/>' in bar  # Excel's "column" chart: vertical bars
        assert "Revenue per region" in bar and "Report!$A$2:$A$4" in bar
        assert "Report!$D$2:$D$4" in bar
        assert "Orders per region" in line and "Report!$C$2:$C$4" in line
        assert "Orders per status" in pie and "Summary!$B$" in pie

    def test_chart_over_rows_plots_at_most_max_points(self):
        context = ReportContext(
            charts=[Chart.bar("First two", category="k", values="v", max_points=2)]
        )
        data = write(XLSXWriter, ["k", "v"], [[("a", 1), ("b", 2), ("c", 3)]], None, context)
        xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/charts/chart1.xml").decode()
        assert "Report!$A$2:$A$3" in xml and "Report!$B$2:$B$3" in xml

    def test_zero_rows_still_a_workbook_and_charts_say_no_data(self):
        data = write(XLSXWriter, ChartedReport.columns, [], None, charted_context())
        book = openpyxl.load_workbook(io.BytesIO(data))
        report = book["Report"]
        assert [[c.value for c in row] for row in report.iter_rows()] == [ChartedReport.columns]
        assert report.freeze_panes == "A2"
        lines = [r[0] for r in book["Summary"].iter_rows(values_only=True) if r[0]]
        assert "Revenue per region: no data to chart." in lines
        assert "Orders per status: no data to chart." in lines
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert not [name for name in names if name.startswith("xl/charts/")]


# -- JSON / NDJSON -------------------------------------------------------------------------------
JSON_ROWS = [
    [
        1,
        Decimal("12.50"),
        datetime.date(2026, 1, 5),
        datetime.datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        None,
        'Zoë ✓ "quoted"\n',
        True,
    ],
    [2, Decimal("0.1"), None, None, None, float("nan"), "=1+1", [1, {"x": float("inf")}]],
]
JSON_COLUMNS = ["id", "amount", "day", "at", "ref", "ratio", "text", "extra"]
JSON_EXPECTED = [
    {
        "id": 1,
        "amount": "12.50",
        "day": "2026-01-05",
        "at": "2026-01-05T08:30:00Z",
        "ref": "12345678-1234-5678-1234-567812345678",
        "ratio": None,
        "text": 'Zoë ✓ "quoted"\n',
        "extra": True,
    },
    # NaN and infinities are not JSON: null. No formula neutralisation.
    {
        "id": 2,
        "amount": "0.1",
        "day": None,
        "at": None,
        "ref": None,
        "ratio": None,
        "text": "=1+1",
        "extra": [1, {"x": None}],
    },
]


def test_json_is_one_array_of_objects_streamed_in_chunks():
    data = write(JSONWriter, JSON_COLUMNS, [JSON_ROWS[:1], [], JSON_ROWS[1:]])
    assert json.loads(data) == JSON_EXPECTED
    assert "Zoë ✓".encode() in data  # UTF-8, not \u escapes
    assert data.startswith(b"[\n{") and data.endswith(b"}\n]\n")
    assert data.count(b"\n") == 4  # one object per line


def test_ndjson_is_one_object_per_line():
    data = write(NDJSONWriter, JSON_COLUMNS, [JSON_ROWS[:1], JSON_ROWS[1:]])
    lines = data.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == JSON_EXPECTED
    assert data.endswith(b"\n") and "Zoë ✓".encode() in data


def test_json_keys_of_repeated_columns_stay_distinct():
    data = write(JSONWriter, ["a", "a", "b"], [[(1, 2, 3)]])
    assert json.loads(data) == [{"a": 1, "a_2": 2, "b": 3}]


def test_json_values_of_other_types():
    from ipaddress import IPv4Address

    aware = datetime.time(9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    row = (IPv4Address("10.0.0.1"), {"b", "a"}, aware, datetime.timedelta(days=1, hours=2))
    data = write(NDJSONWriter, ["ip", "tags", "at", "took"], [[row]])
    assert json.loads(data) == {
        "ip": "10.0.0.1",
        "tags": ["a", "b"],
        "at": "09:30:00+02:00",
        "took": "P1DT02H00M00S",
    }


def test_json_and_ndjson_with_zero_rows():
    assert json.loads(write(JSONWriter, ["a"], [])) == []
    assert write(NDJSONWriter, ["a"], []) == b""


# -- PDF -----------------------------------------------------------------------------------------
def pdf_text(data):
    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


class TestPDF:
    def test_summary_document_with_parameters_figures_charts_and_preview(self, settings):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "PDF_PREVIEW_ROWS": 5}
        rows = [
            ("north", datetime.date(2026, 1, 5), i, Decimal(f"{i}.25"), f"row-{i}")
            for i in range(12)
        ]
        data = write(
            PDFWriter,
            ChartedReport.columns,
            [rows[:7], rows[7:]],
            CHARTED_SUMMARY,
            charted_context(),
        )
        assert data.startswith(b"%PDF-")
        reader, text = pdf_text(data)
        assert reader.metadata.title == "January sales"
        for expected in (
            "January sales",
            "Charted sales · charted",
            "Generated 2026-01-31 17:45:00 (UTC)",
            "Parameters",
            "north",
            "paid, shipped",
            "Total revenue",
            "1,334.49",  # amounts kept as strings read as numbers
            "Orders by status",
            "Revenue per region",
            "Orders per status",
            "2026-01-05",
            "row-0",
            "row-4",
            "4.25",
            "Showing the first 5 of 12 rows.",
        ):
            assert expected in text, expected
        assert "row-5" not in text  # beyond the preview

    def test_keeps_only_preview_and_chart_points_in_memory(self, settings):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "PDF_PREVIEW_ROWS": 3}
        context = ReportContext(charts=[Chart.line("n", category="k", values="v", max_points=4)])
        writer = PDFWriter(io.BytesIO(), context=context)
        writer.write_header(["k", "v"])
        for start in range(0, 2000, 500):
            writer.write_rows([(f"k{i}", i) for i in range(start, start + 500)])
        assert writer.preview == [["k0", "0"], ["k1", "1"], ["k2", "2"]]
        assert writer.row_points == {
            0: [("k0", [0.0]), ("k1", [1.0]), ("k2", [2.0]), ("k3", [3.0])]
        }
        assert writer.row_count == 2000

    def test_user_text_is_shown_literally_never_as_markup(self):
        nasty = '<para><font size="40">big</font> & <b>bold</b></para> <unclosed'
        context = ReportContext(title="<i>Title</i>", parameters={"q": "<script>"})
        data = write(PDFWriter, ["text"], [[(nasty,), ("ctrl\x00\x07char",)]], None, context)
        _, text = pdf_text(data)
        assert "<i>Title</i>" in text and "<script>" in text
        assert '<para><font size="40">big</font>' in text and "<unclosed" in text
        assert "ctrlchar" in text

    def test_landscape_for_wide_reports_portrait_otherwise(self):
        narrow = PdfReader(io.BytesIO(write(PDFWriter, list("abc"), [[(1, 2, 3)]]))).pages[0]
        wide = PdfReader(io.BytesIO(write(PDFWriter, list("abcdefgh"), [[tuple(range(8))]])))
        assert narrow.mediabox.width < narrow.mediabox.height
        assert wide.pages[0].mediabox.width > wide.pages[0].mediabox.height

    def test_long_cells_are_cut_and_the_header_repeats_on_every_page(self, settings):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "PDF_PREVIEW_ROWS": 200}
        rows = [(i, "word " * 2000) for i in range(200)]
        reader, text = pdf_text(write(PDFWriter, ["number", "long_text"], [rows]))
        table_pages = [page.extract_text() for page in reader.pages[1:]]
        assert len(table_pages) > 3
        assert all("Long text" in page for page in table_pages)
        assert "…" in text
        assert "Showing all 200 rows." in text

    def test_zero_rows_and_missing_summary(self):
        data = write(PDFWriter, ChartedReport.columns, [], None, charted_context())
        _, text = pdf_text(data)
        assert "The report has no rows." in text
        assert "No data to chart." in text
        assert "Rows\n0" in text or "Rows 0" in text


# -- optional dependencies -----------------------------------------------------------------------
def test_package_imports_and_csv_works_without_the_optional_libraries():
    code = """
import io, sys
sys.modules["xlsxwriter"] = None
sys.modules["reportlab"] = None
import django_async_reports.writers as writers
from django_async_reports.writers import CSVWriter, XLSXWriter, PDFWriter
buffer = io.BytesIO()
writer = CSVWriter(buffer)
writer.write_header(["a"])
writer.write_rows([["=x"]])
writer.close()
print(buffer.getvalue())
print(XLSXWriter.is_available(), PDFWriter.is_available(), writers.available_formats())
for cls in (XLSXWriter, PDFWriter):
    try:
        cls(io.BytesIO())
    except ImportError:
        print(cls.format, "ImportError")
"""
    assert fresh_python_output(code) == [
        'b"a\\r\\n\'=x\\r\\n"',
        "False False ['csv', 'json', 'ndjson']",
        "xlsx ImportError",
        "pdf ImportError",
    ]


# -- through the service layer -------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["xlsx", "json", "ndjson", "pdf"])
def test_generate_writes_each_format_with_context_summary_and_charts(user, fmt):
    report = ReportFactory(user=user, report_type="charted", format=fmt, parameters={})
    claimed = services.claim_report(report.pk)
    services.generate(claimed)
    report.refresh_from_db()
    assert report.result_file.name.endswith(f".{fmt}")
    assert report.result_data["row_count"] == 3
    with report_storage.open(report.result_file.name, "rb") as handle:
        data = handle.read()
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert book["Report"]["A2"].value == "north"
        assert book["Report"]["D2"].value == 1234.5
        assert book["Report"]["E2"].value == "'=SUM(A1:A2)"
        assert len(book["Summary"]._charts) == 3
    elif fmt == "json":
        assert [row["revenue"] for row in json.loads(data)] == ["1234.50", "99.99", "0.00"]
    elif fmt == "ndjson":
        assert [json.loads(line)["region"] for line in data.splitlines()] == [
            "north",
            "south",
            "east",
        ]
    else:
        _, text = pdf_text(data)
        assert report.title in text and "Orders per status" in text and "Zoë" in text


def test_pdf_figures_format_amounts_but_not_ids_years_or_dates():
    from django_async_reports.writers.pdf import _figure

    assert _figure("336544.68") == "336,544.68"
    assert _figure("-1234.5") == "-1,234.5"
    assert _figure(Decimal("9876543.21")) == "9,876,543.21"
    assert _figure(12345) == "12,345"
    # Strings that are not amounts are shown as they are.
    assert _figure("2024") == "2024"
    assert _figure("00123") == "00123"
    assert _figure("2024-01-01") == "2024-01-01"
    assert _figure("1.2.3") == "1.2.3"
    assert _figure(True) == "True"


def test_pdf_lays_out_whatever_the_user_typed():
    # A list of 1,500 ids (8 KB of JSON, under MAX_PARAMETERS_BYTES), cells of
    # 400 newlines or 5,000 characters: each cell is cut, the document is built.
    context = ReportContext(
        title="T" * 2000, parameters={"ids": list(range(1500)), "text": "\n" * 400}
    )
    rows = [("\n" * 400, "x" * 5000)] * 60
    summary = {"notes": "\n".join(["line"] * 500), "big": [{"k": "v" * 3000}] * 5}
    data = write(PDFWriter, ["a", "b"], [rows], summary, context)
    reader, text = pdf_text(data)
    assert "Showing the first 50 of 60 rows." in text
    assert "0, 1, 2, 3" in text
    assert "1499" not in text  # the long parameter was cut
    assert len(reader.pages) < 20
