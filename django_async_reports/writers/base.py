"""The writer interface every format implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any, ClassVar

_WRITERS: dict[str, type[ReportWriter]] = {}


class ReportWriter:
    """Streams a header and rows to a binary file object, in constant memory.

    Subclasses set ``format``, ``extension`` and ``content_type`` and implement
    ``write_header``/``write_rows``/``close``. Defining a subclass registers it.
    """

    format: ClassVar[str]
    extension: ClassVar[str]
    content_type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "format", None):
            _WRITERS[cls.format] = cls

    def __init__(self, fileobj: IO[bytes], *, neutralize_formulas: bool = True) -> None:
        self.fileobj = fileobj
        self.neutralize_formulas = neutralize_formulas

    def write_header(self, columns: Sequence[str]) -> None:
        raise NotImplementedError("ReportWriter subclasses must implement write_header().")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError("ReportWriter subclasses must implement write_rows().")

    def close(self) -> None:
        """Flush what is buffered; the file object itself stays open."""


def get_writer_class(fmt: str) -> type[ReportWriter]:
    try:
        return _WRITERS[fmt]
    except KeyError:
        raise LookupError(f"No report writer for format {fmt!r}.") from None


def writer_classes() -> dict[str, type[ReportWriter]]:
    return dict(_WRITERS)
