"""docs/how-to/formats-and-charts.md: its generator, run in-process, writes what the page says."""

from __future__ import annotations

import datetime
import gzip
import importlib
import io
import zipfile

import openpyxl
import pytest

from django_async_reports.models import Report
from django_async_reports.registry import registry
from django_async_reports.storage import report_storage
from tests.helpers import REPORTS_URL, run_report

pytestmark = pytest.mark.django_db

MODULE = "docs_src.how_to.formats_and_charts.reports"


@pytest.fixture
def region_sales():
    """The page's generator, registered for one test only (importing the module registers it)."""
    generator = importlib.import_module(MODULE).RegionSalesReport
    registry.register(generator)  # again, after an earlier test unregistered it
    yield generator
    registry.unregister(generator.report_type)


def request(client, **payload):
    """POST a region_sales request through the API (the tests run its steps themselves)."""
    return client.post(REPORTS_URL, {"report_type": "region_sales", **payload}, format="json")


def stored_bytes(report) -> bytes:
    with report_storage.open(report.result_file.name, "rb") as handle:
        return handle.read()


def test_the_type_offers_only_its_declared_formats(auth_client, region_sales):
    assert region_sales.get_formats() == ["csv", "xlsx", "pdf"]
    types = {t["report_type"]: t for t in auth_client.get(f"{REPORTS_URL}types/").json()}
    assert types["region_sales"]["formats"] == ["csv", "xlsx", "pdf"]

    refused = request(auth_client, format="json")

    assert refused.status_code == 400
    assert refused.json()["format"] == [
        '"json" is not a format of region_sales reports. Formats: csv, xlsx, pdf.'
    ]


def test_xlsx_has_typed_cells_and_the_three_native_charts(auth_client, region_sales):
    created = request(auth_client, format="xlsx", title="Q1 regions")
    assert created.status_code == 201, created.content
    report = run_report(Report.objects.get(pk=created.json()["id"]), notify=False)

    assert report.result_file.name.endswith("/q1-regions.xlsx")
    data = stored_bytes(report)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["Report"]
    assert [cell.value for cell in sheet[1]] == ["region", "day", "orders", "revenue"]
    assert sheet["A2"].value == "north"
    assert sheet["B2"].value == datetime.datetime(2026, 1, 5)  # a date cell, not text
    assert sheet["B2"].number_format == "yyyy-mm-dd"
    assert (sheet["C2"].value, sheet["D2"].value) == (12, 1234.5)  # numbers
    assert sheet.freeze_panes == "A2"
    # openpyxl reads charts back (Summary sheet); the chart parts say which kind each is.
    assert len(book["Summary"]._charts) == 3
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        charts = [
            archive.read(name).decode()
            for name in archive.namelist()
            if name.startswith("xl/charts/chart")
        ]
    kinds = sorted(k for xml in charts for k in ("barChart", "lineChart", "pieChart") if k in xml)
    assert kinds == ["barChart", "lineChart", "pieChart"]
    assert any("Revenue per region" in xml for xml in charts)


def test_compressed_csv_is_gzip_of_the_same_rows(auth_client, region_sales):
    created = request(auth_client, format="csv", compress=True, title="Q1 regions")
    assert created.status_code == 201, created.content
    report = run_report(Report.objects.get(pk=created.json()["id"]), notify=False)

    assert report.result_file.name.endswith("/q1-regions.csv.gz")
    text = gzip.decompress(stored_bytes(report)).decode("utf-8")
    assert text.splitlines()[:2] == ["region,day,orders,revenue", "north,2026-01-05,12,1234.50"]


def test_pdf_is_written_with_its_charts(auth_client, region_sales):
    created = request(auth_client, format="pdf", title="Q1 regions")
    assert created.status_code == 201, created.content
    report = run_report(Report.objects.get(pk=created.json()["id"]), notify=False)

    data = stored_bytes(report)
    assert data.startswith(b"%PDF-")
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "Orders per status" in text and "Revenue per region" in text
