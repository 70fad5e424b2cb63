"""Charts a generator declares: native charts in XLSX, drawings in the PDF summary.

A chart plots either the report's own rows (the first ``max_points`` of them)
or one entry of the generator's ``summary``::

    charts = [
        Chart.line("Revenue per day", category="group", values=["revenue"]),
        Chart.pie("Orders per status", summary_key="orders_by_status"),
    ]

Summary data is a mapping ``{label: number}`` (one series, named after the
chart), a list of ``[label, number]`` pairs, or a list of dicts read with
``category`` / ``values`` as keys. Numbers may be JSON strings ("12.50"), as
summaries keep decimals exact that way.

``ReportGenerator.check_declaration`` validates a generator's ``charts`` with
:func:`check_charts`, so a chart naming a missing column fails at startup, not
in the middle of a report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from math import isfinite
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

    def __post_init__(self) -> None:
        # ``Chart(kind="bar", values="total")`` means one series, not five of one letter.
        if not isinstance(self.values, tuple):
            object.__setattr__(self, "values", _as_tuple(self.values))

    @classmethod
    def bar(
        cls,
        title: str,
        *,
        category: str = "",
        values: str | Sequence[str] = (),
        summary_key: str = "",
        max_points: int = 100,
    ) -> Chart:
        """Vertical bars (a "column" chart in Excel), one colour per series."""
        return cls("bar", title, category, _as_tuple(values), summary_key, max_points)

    @classmethod
    def line(
        cls,
        title: str,
        *,
        category: str = "",
        values: str | Sequence[str] = (),
        summary_key: str = "",
        max_points: int = 100,
    ) -> Chart:
        """One line per series over the categories, in their order."""
        return cls("line", title, category, _as_tuple(values), summary_key, max_points)

    @classmethod
    def pie(
        cls,
        title: str,
        *,
        category: str = "",
        values: str | Sequence[str] = (),
        summary_key: str = "",
        max_points: int = 100,
    ) -> Chart:
        """Shares of one series; negative and zero values are left out of the drawing."""
        return cls("pie", title, category, _as_tuple(values), summary_key, max_points)

    @property
    def source(self) -> Literal["rows", "summary"]:
        return "summary" if self.summary_key else "rows"

    def check(self, columns: Sequence[str]) -> list[str]:
        """Problems with this declaration against the generator's columns (empty when fine)."""
        problems: list[str] = []
        if self.kind not in CHART_KINDS:
            problems.append(f"kind must be one of {', '.join(CHART_KINDS)}, not {self.kind!r}")
        if not isinstance(self.title, str) or not self.title.strip():
            problems.append("title must be a non-empty string")
        if not isinstance(self.summary_key, str):
            problems.append(f"summary_key must be a string, not {self.summary_key!r}")
        if not isinstance(self.category, str):
            problems.append(f"category must be a string, not {self.category!r}")
        if any(not isinstance(v, str) for v in self.values):
            problems.append("values must be strings")
            return problems
        if self.source == "rows":
            if not self.category:
                problems.append("category must name the column holding the labels")
            elif self.category not in columns:
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
        if (
            not isinstance(self.max_points, int)
            or isinstance(self.max_points, bool)
            or self.max_points < 1
        ):
            problems.append("max_points must be an integer of at least 1")
        return problems

    def series_names(self) -> list[str]:
        """One name per series: the value columns/keys, or the title for a single series."""
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
                if isinstance(item, Mapping) and self.values:
                    points.append(
                        (
                            _label(item.get(self.category)),
                            [to_number(item.get(v)) for v in self.values],
                        )
                    )
                elif _is_pair(item):
                    points.append((_label(item[0]), [to_number(item[1])]))
            return points
        return []


def check_charts(charts: Any, columns: Sequence[str]) -> list[str]:
    """Problems with a generator's ``charts`` declaration, each naming its chart.

    Accepts anything, so a declaration check can report ``charts = Chart.bar(...)``
    (a lone chart, not a list) or a dict in the list instead of failing on it.
    """
    if isinstance(charts, (Chart, str, bytes, Mapping)) or not isinstance(charts, Sequence):
        return ["charts must be a list of Chart objects"]
    problems: list[str] = []
    for position, chart in enumerate(charts):
        if not isinstance(chart, Chart):
            problems.append(f"charts[{position}] is not a Chart: {chart!r}")
            continue
        name = f"chart {chart.title!r}" if isinstance(chart.title, str) else f"charts[{position}]"
        problems += [f"{name}: {problem}" for problem in chart.check(columns)]
    return problems


def _as_tuple(values: str | Sequence[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _label(value: Any) -> str:
    return "" if value is None else str(value)


def _is_pair(item: Any) -> bool:
    return isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 2


def to_number(value: Any) -> float:
    """A float for plotting: numbers as they are, numeric strings parsed, anything else 0.

    NaN and infinities also become 0: no chart library draws them.
    """
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return 0.0
    if isinstance(value, Decimal) and not value.is_finite():
        return 0.0
    if isinstance(value, (bool, int, float, Decimal)):
        number = float(value)
        return number if isfinite(number) else 0.0
    return 0.0
