"""A CSV report whose rows() returns a values_list QuerySet, built by a real worker.

On PostgreSQL the worker writes it with COPY; the downloaded file (plain and
gzip) must be the bytes the rows path's CSV writer gives for the same rows.
"""

from __future__ import annotations

import gzip
import io

import pytest

from django_async_reports.writers import CSVWriter
from tests.test_copy_fast_path import TEXTS, make_typed_rows
from tests.testapp.models import TypedRow
from tests.testapp.reports import TYPED_FIELDS, TypedRowsReport

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def rows_path_csv() -> bytes:
    """What the rows path writes for the "typed_rows" report (formulas neutralised)."""
    buffer = io.BytesIO()
    writer = CSVWriter(buffer, neutralize_formulas=True)
    writer.write_header(TypedRowsReport.columns)
    writer.write_rows(list(TypedRow.objects.order_by("pk").values_list(*TYPED_FIELDS)))
    writer.close()
    return buffer.getvalue()


def test_a_values_list_csv_report_plain_and_gzip(worker, alice):
    make_typed_rows()
    expected = rows_path_csv()
    assert expected.count(b"\r\n") > len(TEXTS)
    created = {
        compress: alice.create(report_type="typed_rows", format="csv", compress=compress)["id"]
        for compress in (False, True)
    }
    for compress, rid in created.items():
        report = alice.wait_finished(rid)
        assert report["status"] == "completed", report
        assert report["result_data"]["row_count"] == TypedRow.objects.count()
        body = alice.get(f"{rid}/download/").content
        assert (gzip.decompress(body) if compress else body) == expected
