"""Helpers for a host project's tests: run a report in-process, read its file back.

No broker and no worker are needed. :func:`run_report` requests a report through
the service layer (so its parameters are validated as the API validates them),
then applies the generation task in the test's process, as a worker would run it.
:func:`read_rows` reads the file it produced. Both work in a test wrapped in a
transaction: pytest-django's ``db`` fixture or Django's ``TestCase``.

With pytest, a conftest enables the ``run_report`` fixture::

    pytest_plugins = ["django_async_reports.testing"]

pytest is not a dependency: without it, this module still offers the functions.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from typing import Any

from . import services
from .models import Report
from .tasks import generate_report
from .writers.jsonlines import unique_keys
from .writers.xlsx import XLSXWriter

__all__ = ["read_file", "read_rows", "run_report"]

#: The formats :func:`read_rows` reads back.
READABLE_FORMATS = ("csv", "json", "ndjson", "xlsx")


def run_report(
    report_type: str,
    *,
    user: Any,
    parameters: dict[str, Any] | None = None,
    format: str | None = None,
    **options: Any,
) -> Report:
    """Request a report and run it to its end in this process; return it refreshed.

    The request goes through :func:`~django_async_reports.services.request_report`:
    invalid ``parameters`` raise the ``rest_framework.exceptions.ValidationError``
    the API answers ``400`` with, and the user's permissions and limits apply.
    ``format`` defaults as the API's does (``DEFAULT_FORMAT``, else the type's
    first); ``options`` are the service's others (``title``, ``priority``,
    ``compress``, ``send_email``, ``webhook_url``).

    The generation task is then applied in-process (``Task.apply``), and runs the
    steps it hands over to as well: post-processing, then the notification (the
    e-mail and the webhook, if asked for). Retries run at once, without their
    countdown. The report comes back ``completed``, or ``failed`` with its
    ``error_message`` (for its user) and ``error_detail`` (with the traceback);
    a generator's exception is never raised here.

    Raises :class:`RuntimeError` if the report is left ``pending`` or
    ``processing``, which a report run this way never should be.
    """
    report = services.request_report(
        user=user, report_type=report_type, parameters=parameters, format=format, **options
    )
    # The request's own message is sent only when the transaction commits, which
    # a test's transaction never does. throw=False: a failed run is the report's
    # status, whatever the host's task_eager_propagates says.
    generate_report.apply(args=[str(report.pk)], task_id=report.celery_task_id, throw=False)
    report.refresh_from_db()
    if report.is_active:
        raise RuntimeError(
            f"Report {report.pk} ({report_type}) was left {report.status}: "
            f"{report.progress_message or 'no progress message'}."
        )
    return report


def read_file(report: Report) -> bytes:
    """The bytes of the report's file, un-gzipped when the report was compressed.

    Raises :class:`ValueError` when the report has no file (it failed, or has
    not run), with its status and error.
    """
    if not report.result_file:
        raise ValueError(
            f"Report {report.pk} has no file: it is {report.status}"
            + (f" ({report.error_message})" if report.error_message else "")
            + "."
        )
    name = str(report.result_file.name)
    with report.result_file.storage.open(name, "rb") as fh:
        content = fh.read()
    return gzip.decompress(content) if name.endswith(".gz") else content


def read_rows(report: Report) -> list[dict[str, Any]]:
    """The report's rows, each a dict keyed by column (a repeated column gets ``_2``...).

    Reads CSV (values are strings, as in the file), JSON and NDJSON (values as
    JSON decodes them), gzipped or not, and XLSX (values as openpyxl reads them:
    numbers, datetimes, text; every "Report" sheet, in order). XLSX needs
    openpyxl, which is not a dependency of the package. Other formats raise
    :class:`ValueError`: read them with :func:`read_file`.
    """
    fmt = report.format
    if fmt not in READABLE_FORMATS:
        raise ValueError(
            f'read_rows() reads {", ".join(READABLE_FORMATS)} reports, not "{fmt}": '
            "use read_file() and a reader of that format."
        )
    content = read_file(report)
    if fmt == "xlsx":
        return _xlsx_rows(content)
    text = content.decode("utf-8")
    if fmt == "json":
        rows: list[dict[str, Any]] = json.loads(text)
        return rows
    if fmt == "ndjson":
        # split("\n"), not splitlines(): a value may hold U+2028, which JSON leaves as it is.
        return [json.loads(line) for line in text.split("\n") if line]
    header, *records = csv.reader(io.StringIO(text, newline=""))
    keys = unique_keys(header)
    return [dict(zip(keys, record, strict=True)) for record in records]


def _xlsx_rows(content: bytes) -> list[dict[str, Any]]:
    try:
        from openpyxl import load_workbook
    except ImportError:
        raise ImportError(
            "read_rows() reads XLSX reports with openpyxl, which is not installed: "
            "pip install openpyxl (in your test requirements)."
        ) from None
    workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    first, continued = XLSXWriter.sheet_name, f"{XLSXWriter.sheet_name} ("
    rows: list[dict[str, Any]] = []
    try:
        for sheet in workbook.worksheets:
            if sheet.title != first and not sheet.title.startswith(continued):
                continue  # the "Summary" sheet
            header, *records = sheet.iter_rows(values_only=True)
            keys = unique_keys([str(name) for name in header])
            rows.extend(dict(zip(keys, record, strict=False)) for record in records)
    finally:
        workbook.close()
    return rows


# -- the pytest fixture -------------------------------------------------------------
try:
    import pytest
except ImportError:  # pytest is not a dependency: the functions above work without it.
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(name="run_report")
    def run_report_fixture(db: None) -> Callable[..., Report]:
        """:func:`run_report`, with the test database enabled (pytest-django's ``db``)."""
        return run_report
