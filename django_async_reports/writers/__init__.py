"""File writers, one module per format, streaming rows to a binary file object."""

from __future__ import annotations

from .base import (
    ReportContext,
    ReportWriter,
    available_formats,
    get_writer_class,
    writer_classes,
)
from .csv import CSVWriter

__all__ = [
    "CSVWriter",
    "ReportContext",
    "ReportWriter",
    "available_formats",
    "get_writer_class",
    "writer_classes",
]
