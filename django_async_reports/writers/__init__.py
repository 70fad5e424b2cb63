"""File writers, one module per format, streaming rows to a binary file object.

Importing this package registers every format. The XLSX and PDF modules import
xlsxwriter / reportlab only when a writer is created, so the package imports
(and CSV/JSON work) without the optional extras; ``available_formats()`` lists
the formats whose packages are installed.
"""

from __future__ import annotations

from .base import (
    ReportContext,
    ReportWriter,
    available_formats,
    get_writer_class,
    writer_classes,
)

# isort: off
# Import order is registration order: the order ``available_formats()`` offers them.
from .csv import CSVWriter
from .xlsx import XLSXWriter
from .jsonlines import JSONWriter, NDJSONWriter
from .pdf import PDFWriter

# isort: on

__all__ = [
    "CSVWriter",
    "JSONWriter",
    "NDJSONWriter",
    "PDFWriter",
    "ReportContext",
    "ReportWriter",
    "XLSXWriter",
    "available_formats",
    "get_writer_class",
    "writer_classes",
]
