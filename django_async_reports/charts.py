"""Charts a generator declares: native charts in XLSX, drawings in the PDF summary.

A chart plots either the report's own rows (the first ``max_points`` of them)
or one entry of the generator's ``summary``::

    charts = [
        Chart.line("Revenue per day", category="group", values=["revenue"]),
        Chart.pie("Orders per status", summary_key="orders_by_status"),
    ]

Summary data is a mapping ``{label: number}`` (one series, named after the
chart) or a list of dicts read with ``category`` / ``values`` as keys. Numbers
may be JSON strings ("12.50"), as summaries keep decimals exact that way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

ChartKind = Literal["bar", "line", "pie"]
CHART_KINDS: tuple[str, ...] = ("bar", "line", "pie")


@dataclass(frozen=True)
class Chart:
    """One chart: its kind, title, and where its categories and values come from."""

    kind: ChartKind
    title: str
    #: Column (rows) or dict key (summary lists) holding the category labels.
    category: str = ""
    #: Columns (rows) or dict keys (summary lists) holding one series each.
    values: tuple[str, ...] = field(default_factory=tuple)
    #: Key of ``summary()`` holding the data; empty to plot the rows.
    summary_key: str = ""
    #: Rows plotted at most (the first ones); charts of a million rows are unreadable.
    max_points: int = 100

    @classmethod
    def bar(cls, title: str, **kwargs: Any) -> Chart:
        return cls(kind="bar", title=title, **_normalise(kwargs))

    @classmethod
    def line(cls, title: str, **kwargs: Any) -> Chart:
        return cls(kind="line", title=title, **_normalise(kwargs))

    @classmethod
    def pie(cls, title: str, **kwargs: Any) -> Chart:
        return cls(kind="pie", title=title, **_normalise(kwargs))

    @property
    def source(self) -> Literal["rows", "summary"]:
        return "summary" if self.summary_key else "rows"

    def check(self, columns: Sequence[str]) -> list[str]:
        """Problems with this declaration against the generator's columns (empty when fine)."""
        problems = []
        if self.kind not in CHART_KINDS:
            problems.append(f"kind must be one of {', '.join(CHART_KINDS)}, not {self.kind!r}")
        if self.source == "rows":
            if self.category not in columns:
                problems.append(f"category {self.category!r} is not one of the columns")
            if not self.values:
                problems.append("values must name at least one column")
            problems += [
                f"value {v!r} is not one of the columns" for v in self.values if v not in columns
            ]
        elif bool(self.category) != bool(self.values):
            problems.append("category and values go together for a summary list")
        if self.kind == "pie" and len(self.values) > 1:
            problems.append("a pie chart has one series")
        if self.max_points < 1:
            problems.append("max_points must be at least 1")
        return problems

    def series_names(self) -> list[str]:
        return list(self.values) or [self.title]

    def points_from_rows(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> list[tuple[str, list[float]]]:
        """(label, values) pairs from the first ``max_points`` rows."""
        at = columns.index(self.category)
        value_at = [columns.index(v) for v in self.values]
        return [
            (_label(row[at]), [to_number(row[i]) for i in value_at])
            for row in rows[: self.max_points]
        ]

    def points_from_summary(
        self, summary: Mapping[str, Any] | None
    ) -> list[tuple[str, list[float]]]:
        """(label, values) pairs from ``summary[summary_key]``; empty when it is missing."""
        data = (summary or {}).get(self.summary_key)
        if isinstance(data, Mapping):
            return [(_label(k), [to_number(v)]) for k, v in list(data.items())[: self.max_points]]
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            points = []
            for item in list(data)[: self.max_points]:
                if isinstance(item, Mapping):
                    points.append(
                        (
                            _label(item.get(self.category)),
                            [to_number(item.get(v)) for v in self.values],
                        )
                    )
            return points
        return []


def _normalise(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "values" in kwargs:
        values = kwargs["values"]
        kwargs["values"] = (values,) if isinstance(values, str) else tuple(values)
    return kwargs


def _label(value: Any) -> str:
    return "" if value is None else str(value)


def to_number(value: Any) -> float:
    """A float for plotting: numbers as they are, numeric strings parsed, anything else 0."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(Decimal(value))
        except (InvalidOperation, ValueError):
            return 0.0
    return 0.0
