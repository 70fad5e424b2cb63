"""Chart declarations: constructors, checks against the columns, points from rows and summaries."""

from decimal import Decimal

import pytest

from django_async_reports import Chart, ReportGenerator
from django_async_reports.charts import check_charts, to_number
from django_async_reports.exceptions import InvalidGenerator

COLUMNS = ["region", "orders", "revenue"]


def test_constructors_set_kind_and_make_values_a_tuple():
    bar = Chart.bar("Revenue", category="region", values="revenue")
    line = Chart.line("Trend", category="region", values=["orders", "revenue"])
    pie = Chart.pie("Status", summary_key="by_status", max_points=5)
    assert (bar.kind, bar.values, bar.source) == ("bar", ("revenue",), "rows")
    assert (line.kind, line.values) == ("line", ("orders", "revenue"))
    assert (pie.kind, pie.values, pie.source, pie.max_points) == ("pie", (), "summary", 5)
    # Built directly, a lone string is still one series, not one per letter.
    assert Chart(kind="bar", title="t", category="region", values="orders").values == ("orders",)
    assert hash(bar) == hash(Chart.bar("Revenue", category="region", values=["revenue"]))


def test_valid_declarations_have_no_problems():
    assert Chart.bar("Revenue", category="region", values=["revenue"]).check(COLUMNS) == []
    assert Chart.pie("Status", summary_key="by_status").check(COLUMNS) == []
    summary_list = Chart.line("Top", summary_key="top", category="name", values=["sold"])
    assert summary_list.check(COLUMNS) == []


@pytest.mark.parametrize(
    ("chart", "problem"),
    [
        (Chart.bar("x", category="nope", values=["revenue"]), "category 'nope' is not one"),
        (Chart.bar("x", values=["revenue"]), "category must name the column"),
        (Chart.bar("x", category="region"), "values must name at least one column"),
        (Chart.bar("x", category="region", values=["gone"]), "value 'gone' is not one"),
        (Chart.pie("x", category="region", values=["orders", "revenue"]), "one series"),
        (Chart.bar("", category="region", values=["orders"]), "title must be a non-empty"),
        (Chart.bar("x", category="region", values=["orders"], max_points=0), "max_points"),
        (Chart.bar("x", summary_key="s", category="name"), "go together"),
        (Chart(kind="donut", title="x", summary_key="s"), "kind must be one of bar, line, pie"),  # type: ignore[arg-type]
    ],
)
def test_each_problem_is_reported(chart, problem):
    problems = chart.check(COLUMNS)
    assert any(problem in p for p in problems), problems


def test_check_charts_names_the_chart_and_rejects_non_charts():
    problems = check_charts(
        [
            Chart.bar("Good", category="region", values=["orders"]),
            Chart.bar("Bad", category="nope", values=["orders"]),
            {"kind": "bar"},
        ],
        COLUMNS,
    )
    assert problems == [
        "chart 'Bad': category 'nope' is not one of the columns",
        "charts[2] is not a Chart: {'kind': 'bar'}",
    ]
    lone = check_charts(Chart.pie("x", summary_key="s"), COLUMNS)
    assert lone == ["charts must be a list of Chart objects"]
    assert check_charts((), COLUMNS) == []


def test_generator_declaration_check_uses_chart_check():
    class BadCharts(ReportGenerator):
        report_type = "bad_charts_probe"
        columns = COLUMNS
        charts = [Chart.line("Orders", category="day", values=["orders"])]

        def rows(self, params):
            return []

    with pytest.raises(InvalidGenerator, match="'day' is not one of the columns"):
        BadCharts.check_declaration()


def test_points_from_rows_take_the_first_max_points():
    chart = Chart.bar("x", category="region", values=["orders", "revenue"], max_points=2)
    rows = [("north", 3, Decimal("10.50")), ("south", None, "7.25"), ("east", 1, 1)]
    assert chart.points_from_rows(COLUMNS, rows) == [
        ("north", [3.0, 10.5]),
        ("south", [0.0, 7.25]),
    ]


def test_points_from_summary_shapes():
    mapping = Chart.pie("Status", summary_key="by_status")
    summary = {"by_status": {"paid": 3, "shipped": "4.5", None: 1}}
    assert mapping.points_from_summary(summary) == [
        ("paid", [3.0]),
        ("shipped", [4.5]),
        ("", [1.0]),
    ]
    dicts = Chart.bar("Top", summary_key="top", category="name", values=["sold", "returned"])
    top = {"top": [{"name": "A", "sold": 5, "returned": "1"}, {"name": "B", "sold": 2}]}
    assert dicts.points_from_summary(top) == [("A", [5.0, 1.0]), ("B", [2.0, 0.0])]
    pairs = Chart.line("Days", summary_key="days", max_points=2)
    days = {"days": [["mon", 1], ("tue", "2"), ["wed", 3]]}
    assert pairs.points_from_summary(days) == [("mon", [1.0]), ("tue", [2.0])]
    assert mapping.points_from_summary(None) == []
    assert mapping.points_from_summary({"by_status": "oops"}) == []
    assert mapping.series_names() == ["Status"]
    assert dicts.series_names() == ["sold", "returned"]


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (3, 3.0),
        (True, 1.0),
        (Decimal("12.50"), 12.5),
        ("12.50", 12.5),
        (" -4 ", -4.0),
        ("n/a", 0.0),
        (None, 0.0),
        (float("nan"), 0.0),
        (float("inf"), 0.0),
        (Decimal("NaN"), 0.0),
        (Decimal("sNaN"), 0.0),
        ("Infinity", 0.0),
        ("1e400", 0.0),
    ],
)
def test_to_number(value, number):
    assert to_number(value) == number
