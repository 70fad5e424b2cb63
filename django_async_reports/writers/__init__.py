"""File writers, one module per format, streaming rows to a binary file object."""

from __future__ import annotations

from .base import ReportWriter, get_writer_class, writer_classes
from .csv import CSVWriter

__all__ = ["CSVWriter", "ReportWriter", "get_writer_class", "writer_classes"]
