"""The writer interface every format implements."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar

from ..charts import Chart

_WRITERS: dict[str, type[ReportWriter]] = {}


@dataclass(frozen=True)
class ReportContext:
    """What a writer may show besides the rows: PDF and XLSX use it for titles and charts."""

    title: str = ""
    report_type: str = ""
    label: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    generated_at: datetime | None = None
    charts: Sequence[Chart] = ()


class ReportWriter:
    """Streams a header and rows to a binary file object, in constant memory.

    Subclasses set ``format``, ``extension``, ``content_type`` and ``label`` and
    implement ``write_header`` / ``write_rows`` / ``close``. ``write_summary``
    is called once after the last row with the generator's summary and the row
    count. Defining a subclass registers it. A format needing optional
    packages lists their import names in ``requires`` and the pip extra that
    brings them in ``extra``; it is offered only when they are installed.
    """

    format: ClassVar[str]
    extension: ClassVar[str]
    content_type: ClassVar[str]
    label: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    #: True when files written in parts and joined byte for byte are one valid file
    #: (no footer, no summary in the file): partitioned reports are split only then.
    concatenable: ClassVar[bool] = False
    extra: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "format", None):
            _WRITERS[cls.format] = cls

    def __init__(
        self,
        fileobj: IO[bytes],
        *,
        neutralize_formulas: bool = True,
        context: ReportContext | None = None,
    ) -> None:
        self.fileobj = fileobj
        self.neutralize_formulas = neutralize_formulas
        self.context = context or ReportContext()

    @classmethod
    def is_available(cls) -> bool:
        """True when every package in ``requires`` can be imported."""
        return all(importlib.util.find_spec(name) is not None for name in cls.requires)

    def write_header(self, columns: Sequence[str]) -> None:
        raise NotImplementedError("ReportWriter subclasses must implement write_header().")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError("ReportWriter subclasses must implement write_rows().")

    def resume(self, columns: Sequence[str]) -> None:
        """Prepare to write rows that follow another part's: ``write_header`` without the header.

        Concatenable formats implement it; the first part writes the header.
        """
        raise NotImplementedError(f"{type(self).__name__} files cannot be written in parts.")

    def write_summary(self, summary: Mapping[str, Any] | None, row_count: int) -> None:
        """Called once after the last row; formats without a summary ignore it."""

    def close(self) -> None:
        """Flush what is buffered; the file object itself stays open."""


def get_writer_class(fmt: str) -> type[ReportWriter]:
    try:
        return _WRITERS[fmt]
    except KeyError:
        raise LookupError(f"No report writer for format {fmt!r}.") from None


def writer_classes() -> dict[str, type[ReportWriter]]:
    """Every registered writer, installed or not, by format name."""
    return dict(_WRITERS)


def available_formats() -> list[str]:
    """Formats whose optional packages are installed, in registration order."""
    return [name for name, cls in _WRITERS.items() if cls.is_available()]
