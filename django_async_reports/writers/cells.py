"""Helpers the XLSX and PDF writers share: cell text, local times, summary layout.

No optional dependency is imported here, so the module is safe on the CSV path.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from ..charts import Chart

logger = logging.getLogger("django_async_reports.writers")


class ReportJSONEncoder(DjangoJSONEncoder):
    """``DjangoJSONEncoder`` (ISO dates, Decimal and UUID as strings) plus ``str()`` of the rest.

    A report should not fail on the one odd value a generator yields (an
    ``IPv4Address``, a model instance); the CSV writer writes ``str()`` of it too.
    """

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.time) and o.utcoffset() is not None:
            return o.isoformat()  # DjangoJSONEncoder refuses aware times.
        try:
            return super().default(o)
        except TypeError:
            if isinstance(o, (set, frozenset)):
                return sorted(o, key=str)
            if isinstance(o, bytes):
                return o.decode("utf-8", "replace")
            return str(o)


def to_local_naive(value: datetime.datetime) -> datetime.datetime:
    """An aware datetime in the current Django time zone, without tzinfo; naive ones unchanged.

    Spreadsheets have no time zones: a naive local time is what a reader expects
    to see, and it matches the times shown by the Django admin.
    """
    if timezone.is_aware(value):
        return timezone.localtime(value).replace(tzinfo=None)
    return value


def json_text(value: Any) -> str:
    return json.dumps(value, cls=ReportJSONEncoder, ensure_ascii=False)


def cell_text(value: Any) -> str:
    """How a value reads in a document: blank for None, local times, lists of plain values
    joined by commas, JSON text for anything nested."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        return to_local_naive(value).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)) and not any(_is_nested(item) for item in value):
        return ", ".join(cell_text(item) for item in value)
    if _is_nested(value):
        return json_text(value)
    return str(value)


def _is_nested(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple, set, frozenset))


def humanize(key: str) -> str:
    """``orders_by_status`` -> ``Orders by status``: summary keys as labels."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else str(key)


@dataclass
class SummaryTable:
    """A list or dict entry of a summary, laid out as a small table."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class SummaryLayout:
    """A summary split into label/value figures and small tables, in the summary's order."""

    figures: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[SummaryTable] = field(default_factory=list)


def layout_summary(summary: Mapping[str, Any] | None) -> SummaryLayout:
    """Scalars become figures; ``{label: value}`` and lists of dicts or pairs become tables.

    A list of plain values is one figure (its items joined by commas), and
    anything nested deeper is shown as JSON text inside its cell.
    """
    layout = SummaryLayout()
    for key, value in (summary or {}).items():
        title = humanize(key)
        if isinstance(value, Mapping):
            layout.tables.append(
                SummaryTable(str(key), title, ["", "Value"], [[k, v] for k, v in value.items()])
            )
        elif isinstance(value, (list, tuple)):
            items = list(value)
            if items and all(isinstance(item, Mapping) for item in items):
                columns: list[str] = []
                for item in items:
                    columns += [str(k) for k in item if str(k) not in columns]
                rows = [[_get(item, column) for column in columns] for item in items]
                layout.tables.append(SummaryTable(str(key), title, columns, rows))
            elif items and all(_is_row(item) for item in items):
                width = max(len(item) for item in items)
                rows = [list(item) + [None] * (width - len(item)) for item in items]
                layout.tables.append(SummaryTable(str(key), title, [""] * width, rows))
            else:
                layout.figures.append((title, cell_text(items)))
        else:
            layout.figures.append((title, value))
    return layout


def _get(item: Mapping[Any, Any], column: str) -> Any:
    if column in item:
        return item[column]
    # Keys that were not strings (ints from a Counter) were listed by their str().
    for key, value in item.items():
        if str(key) == column:
            return value
    return None


def _is_row(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and all(
        not isinstance(cell, (Mapping, list, tuple)) for cell in item
    )


def usable_charts(charts: Sequence[Chart], columns: Sequence[str]) -> list[Chart]:
    """The charts whose declaration fits the columns; the others are logged and skipped.

    ``ReportGenerator.check_declaration`` rejects bad charts at startup; this is
    the last line, so a report never fails because of a chart.
    """
    usable = []
    for chart in charts:
        problems = chart.check(columns) if isinstance(chart, Chart) else ["not a Chart"]
        if problems:
            logger.warning("Chart %r skipped: %s", getattr(chart, "title", chart), problems)
        else:
            usable.append(chart)
    return usable
