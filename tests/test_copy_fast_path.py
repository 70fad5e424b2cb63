"""rows() returning a QuerySet: streamed (never cached whole), and COPY for CSV on PostgreSQL.

The fast path's COPY runs on a connection of its own, which sees committed
rows only: these tests use ``transaction=True``.
"""

from __future__ import annotations

import csv
import datetime
import io
import uuid
from decimal import Decimal

import pytest
from django.db import DataError, connections
from django.db.models import DateTimeField, DecimalField, F, Sum
from django.db.models.expressions import RawSQL
from django.db.models.query import QuerySet

from django_async_reports import services
from django_async_reports.exceptions import ReportCancelled
from django_async_reports.models import Report
from django_async_reports.progress import ProgressTracker
from django_async_reports.services import copy_export
from django_async_reports.storage import report_storage
from django_async_reports.writers.csv import neutralize_text
from tests.factories import ReportFactory
from tests.helpers import set_reports
from tests.testapp.models import TypedRow
from tests.testapp.reports import TYPED_FIELDS, TypedRowsReport

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.timezone.utc
TEXTS = [
    "",
    "Comma, \"quote\" and 'single'",
    "line1\nline2\r\nline3\rend",
    "=SUM(A1:A2)",
    "+3",
    "-12.5",
    "1e-5",
    "-1.5e+10",
    "@cmd",
    "\tTab first",
    "\rCR first",
    "-\u0663",  # an Arabic-Indic digit: not a number to a spreadsheet
    "ünïcödé 日本 🎉",
    '"',
    "'already quoted",
    "\\.",
    "a;b|c\\d",
]
DECIMALS = [
    "0.00",
    "-1234.50",
    "99999999.99",
    "0.01",
    "-0.01",
]
TINY = [
    "0E-9",
    "0.000000123",
    "-0.000000001",
    "0.000001000",
    "0.000000999",
    "12345678901.123456789",
    "-0.100000000",
]


def make_typed_rows() -> None:
    """A row of NULLs, then rows crossing every edge value of every type."""
    TypedRow.objects.create()
    for index in range(max(len(TEXTS), len(DECIMALS), len(TINY))):
        TypedRow.objects.create(
            flag=[True, False, None][index % 3],
            number=[-5, 0, 2**31 - 1, None][index % 4],
            big=[2**62, -(2**40), None][index % 3],
            amount=Decimal(DECIMALS[index % len(DECIMALS)]),
            tiny=Decimal(TINY[index % len(TINY)]),
            day=[datetime.date(2024, 2, 29), datetime.date(5, 1, 1), None][index % 3],
            moment=[
                datetime.datetime(2024, 3, 1, 12, 34, 56, 123456, tzinfo=UTC),
                datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
                datetime.datetime(
                    2024, 7, 1, 8, 0, 0, 500, tzinfo=datetime.timezone(datetime.timedelta(hours=5))
                ),
                None,
            ][index % 4],
            clock=[datetime.time(23, 59, 59, 500000), datetime.time(0, 0), None][index % 3],
            label=TEXTS[index % len(TEXTS)],
            note=TEXTS[-1 - index % len(TEXTS)],
            key=[uuid.UUID(int=index * 7919), None][index % 2],
        )


def run_csv(user, *, parameters=None, fmt="csv") -> bytes:
    report = ReportFactory(
        user=user, report_type="typed_rows", format=fmt, parameters=parameters or {}
    )
    claimed = services.claim_report(report.pk)
    services.generate(claimed)
    report.refresh_from_db()
    with report_storage.open(report.result_file.name, "rb") as handle:
        return handle.read()


@pytest.fixture
def copy_calls(monkeypatch):
    """The COPY statements run (the fast path was taken when there is one)."""
    calls: list[str] = []
    original = copy_export.copy_rows

    def spy(plan, fileobj, advance):
        calls.append(plan.statement)
        return original(plan, fileobj, advance)

    monkeypatch.setattr(copy_export, "copy_rows", spy)
    return calls


@pytest.mark.parametrize("neutralize", [True, False])
def test_fast_path_writes_the_same_bytes_as_the_rows_path(
    user, settings, monkeypatch, copy_calls, neutralize
):
    set_reports(settings, NEUTRALIZE_FORMULAS=neutralize)
    make_typed_rows()
    fast = run_csv(user)
    assert len(copy_calls) == 1
    monkeypatch.setattr(TypedRowsReport, "copy_fast_path", False)
    slow = run_csv(user)
    assert len(copy_calls) == 1  # the second run took the rows path
    assert fast == slow
    assert fast.count(b"\r\n") > len(TEXTS)
    assert ("'=SUM(A1:A2)" in fast.decode()) is neutralize


def test_the_rows_path_neutralises_what_the_sql_does():
    # Arabic-Indic digits are no number to a spreadsheet: neutralised as any text.
    assert neutralize_text("-\u0663") == "'-\u0663"
    assert neutralize_text("-3") == "-3"


def test_a_parameter_with_quotes_and_semicolons_is_bound_as_a_value(user, copy_calls):
    make_typed_rows()
    hostile = "x'; DROP TABLE testapp_typedrow; --"
    TypedRow.objects.create(note=hostile, label="found")
    content = run_csv(user, parameters={"note": hostile})
    assert len(copy_calls) == 1
    assert "DROP TABLE testapp_typedrow; --'" in copy_calls[0]  # inside a quoted literal
    lines = content.decode().split("\r\n")
    assert lines[0].startswith("Flag,Number,")
    assert lines[1] == ",,,,,,,,found,x'; DROP TABLE testapp_typedrow; --,"
    assert lines[2:] == [""]
    assert TypedRow.objects.count() == len(TEXTS) + 2


def test_progress_counts_the_rows_against_count(user, copy_calls, monkeypatch):
    monkeypatch.setattr(copy_export, "BATCH_ROWS", 5)
    make_typed_rows()
    advanced: list[int] = []
    original = copy_export.copy_rows

    def counting(plan, fileobj, advance):
        def recorded(rows):
            advanced.append(rows)
            return advance(rows)

        return original(plan, fileobj, recorded)

    monkeypatch.setattr(copy_export, "copy_rows", counting)
    run_csv(user)
    report = Report.objects.get()
    total = TypedRow.objects.count()
    assert sum(advanced) == total == report.result_data["row_count"]
    assert advanced[:-1] == [5] * (len(advanced) - 1)
    assert report.progress == 99  # all rows done, post-processing remains


def test_a_cancel_seen_by_the_tracker_stops_the_copy(user, copy_calls, monkeypatch):
    monkeypatch.setattr(copy_export, "BATCH_ROWS", 3)
    make_typed_rows()
    report = ReportFactory(user=user, report_type="typed_rows", format="csv", parameters={})
    claimed = services.claim_report(report.pk)
    seen: list[int] = []

    def cancel_on_second_batch(self, rows):
        seen.append(rows)
        if len(seen) == 2:
            Report.objects.filter(pk=report.pk).update(status=Report.Status.CANCELLED)
            return self.still_processing()
        return True

    monkeypatch.setattr(ProgressTracker, "advance", cancel_on_second_batch)
    with pytest.raises(ReportCancelled):
        services.generate(claimed)
    assert seen == [3, 3]
    report.refresh_from_db()
    assert report.status == Report.Status.CANCELLED and not report.result_file
    # The dedicated connection ended the COPY: the database answers at once.
    assert TypedRow.objects.count() == len(TEXTS) + 1


@pytest.mark.parametrize("fmt", ["xlsx", "ndjson"])
def test_other_formats_stream_the_queryset_without_caching_it(user, monkeypatch, copy_calls, fmt):
    make_typed_rows()
    returned: list[QuerySet] = []
    original = TypedRowsReport.rows

    def rows(self, params):
        returned.append(original(self, params))
        return returned[-1]

    monkeypatch.setattr(TypedRowsReport, "rows", rows)
    content = run_csv(user, fmt=fmt)
    assert copy_calls == []
    assert returned[0]._result_cache is None  # read by .iterator(), never evaluated whole
    assert Report.objects.get().result_data["row_count"] == TypedRow.objects.count()
    if fmt == "ndjson":
        assert content.count(b"\n") == TypedRow.objects.count()


def test_csv_without_the_fast_path_streams_the_queryset_too(user, monkeypatch, copy_calls):
    monkeypatch.setattr(TypedRowsReport, "copy_fast_path", False)
    TypedRow.objects.create(label="a", number=1)
    returned: list[QuerySet] = []
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: (
            returned.append(TypedRow.objects.values("number", "label")) or returned[0]
        ),
    )
    monkeypatch.setattr(TypedRowsReport, "columns", ["Number", "Label"])
    assert run_csv(user) == b"Number,Label\r\n1,a\r\n"
    assert copy_calls == [] and returned[0]._result_cache is None


def test_flat_values_list_is_one_column_per_row(user, monkeypatch, copy_calls):
    TypedRow.objects.create(label="")
    TypedRow.objects.create(label="=x")
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: TypedRow.objects.order_by("pk").values_list("label", flat=True),
    )
    monkeypatch.setattr(TypedRowsReport, "columns", ["Label"])
    # One column always takes the rows path (csv.writer quotes a lone empty cell).
    assert run_csv(user) == b'Label\r\n""\r\n\'=x\r\n'
    assert copy_calls == []


def test_annotations_take_the_fast_path_with_the_same_bytes(user, monkeypatch, copy_calls):
    make_typed_rows()
    monkeypatch.setattr(TypedRowsReport, "columns", ["Label", "Less", "Total"])
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: (
            TypedRow.objects.values_list("label")
            .annotate(less=F("number") - 1, total=Sum("amount"))
            .order_by("label")
        ),
    )
    fast = run_csv(user)
    assert len(copy_calls) == 1
    monkeypatch.setattr(TypedRowsReport, "copy_fast_path", False)
    assert run_csv(user) == fast


def test_a_column_of_another_type_falls_back_to_the_rows_path(user, monkeypatch, copy_calls):
    TypedRow.objects.create(label="a", number=3)
    monkeypatch.setattr(TypedRowsReport, "columns", ["Label", "Ratio"])
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: TypedRow.objects.annotate(ratio=F("number") / 2.0).values_list(
            "label", "ratio"
        ),
    )
    assert run_csv(user) == b"Label,Ratio\r\na,1.5\r\n"
    assert copy_calls == []


def test_a_queryset_of_model_instances_fails_with_the_fix(user, monkeypatch):
    monkeypatch.setattr(TypedRowsReport, "rows", lambda self, params: TypedRow.objects.all())
    report = ReportFactory(user=user, report_type="typed_rows", format="xlsx", parameters={})
    claimed = services.claim_report(report.pk)
    with pytest.raises(Exception, match=r"QuerySet of TypedRow instances.*values_list"):
        services.generate(claimed)


def test_a_queryset_of_the_wrong_width_fails_as_the_rows_path_does(user, monkeypatch):
    TypedRow.objects.create(label="a")
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: TypedRow.objects.values_list("label", "number"),
    )
    report = ReportFactory(user=user, report_type="typed_rows", format="csv", parameters={})
    claimed = services.claim_report(report.pk)
    with pytest.raises(ValueError, match="yielded 2 values for 11 columns"):
        services.generate(claimed)


def test_the_plan_lists_every_column_in_order():
    plan = copy_export.plan_copy(
        TypedRow.objects.values_list(*TYPED_FIELDS),
        TYPED_FIELDS,
        neutralize=True,
        owner="test",
    )
    assert plan is not None
    assert plan.statement.startswith("COPY (SELECT ")
    assert plan.statement.endswith(") TO STDOUT WITH (FORMAT csv)")


def test_a_database_error_midway_fails_the_run(user, monkeypatch, copy_calls):
    TypedRow.objects.bulk_create([TypedRow(number=n) for n in [1] * 5 + [2**31 - 1]])
    monkeypatch.setattr(TypedRowsReport, "columns", ["Number", "Doubled"])
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: TypedRow.objects.order_by("pk").values_list("number", F("number") * 2),
    )
    report = ReportFactory(user=user, report_type="typed_rows", format="csv", parameters={})
    claimed = services.claim_report(report.pk)
    with pytest.raises(DataError, match="integer out of range"):
        services.generate(claimed)
    assert len(copy_calls) == 1


@pytest.mark.parametrize("neutralize", [True, False])
def test_non_finite_decimals_are_the_same_bytes(
    user, settings, monkeypatch, copy_calls, neutralize
):
    set_reports(settings, NEUTRALIZE_FORMULAS=neutralize)
    for value in ("NaN", "Infinity", "-Infinity", "0.0000000", "-0.000000120"):
        TypedRow.objects.create(label=value)
    monkeypatch.setattr(TypedRowsReport, "columns", ["Label", "Value"])
    monkeypatch.setattr(
        TypedRowsReport,
        "rows",
        lambda self, params: TypedRow.objects.order_by("pk").values_list(
            "label", RawSQL("testapp_typedrow.label::numeric", [], output_field=DecimalField())
        ),
    )
    fast = run_csv(user)
    assert len(copy_calls) == 1
    monkeypatch.setattr(TypedRowsReport, "copy_fast_path", False)
    assert run_csv(user) == fast
    assert (b"-Infinity,'-Infinity" in fast) is neutralize


def same_bytes(user, monkeypatch, copy_calls, columns, rows) -> bytes:
    """The fast path's file for ``rows()``, after checking it is the rows path's, byte for byte."""
    monkeypatch.setattr(TypedRowsReport, "columns", columns)
    monkeypatch.setattr(TypedRowsReport, "rows", lambda self, params: rows())
    fast = run_csv(user)
    assert len(copy_calls) == 1
    monkeypatch.setattr(TypedRowsReport, "copy_fast_path", False)
    slow = run_csv(user)
    assert len(copy_calls) == 1
    assert fast == slow, (fast, slow)
    Report.objects.all().delete()
    return fast


def zone(hours: int, minutes: int = 0) -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))


MOMENTS = [
    datetime.datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC),
    datetime.datetime(2024, 3, 1, 12, 34, 56, 123456, tzinfo=UTC),
    datetime.datetime(2024, 3, 1, 12, 34, 56, 500000, tzinfo=UTC),  # PostgreSQL prints ".5"
    datetime.datetime(2024, 3, 1, 12, 34, 56, 123450, tzinfo=UTC),
    datetime.datetime(2024, 3, 1, 12, 34, 56, 1, tzinfo=UTC),
    datetime.datetime(2024, 1, 15, 9, 30, tzinfo=zone(5, 30)),
    datetime.datetime(2024, 1, 15, 9, 30, 0, 250000, tzinfo=zone(-3)),
    datetime.datetime(2024, 7, 1, 8, 0, 0, 500, tzinfo=zone(5)),
    datetime.datetime(1965, 6, 1, 0, 0, 0, 10, tzinfo=UTC),
    datetime.datetime(1850, 1, 1, 12, 0, tzinfo=UTC),  # a local mean time: offsets with seconds
    datetime.datetime(1, 1, 2, 0, 0, tzinfo=UTC),
    datetime.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
    None,
]
DAYS = [datetime.date(1, 1, 1), datetime.date(5, 1, 1), datetime.date(2024, 2, 29)]
CLOCKS = [
    datetime.time(0, 0),
    datetime.time(23, 59, 59, 999999),
    datetime.time(1, 2, 3, 450000),
    datetime.time(12, 0, 0, 10),
]


def make_moments() -> None:
    for index, moment in enumerate(MOMENTS):
        TypedRow.objects.create(
            moment=moment,
            day=DAYS[index % len(DAYS)] if index < 2 * len(DAYS) else None,
            clock=CLOCKS[index % len(CLOCKS)] if index < 2 * len(CLOCKS) else None,
        )


def moment_rows():
    """timestamptz, timestamp (its UTC wall time), date and time columns."""
    naive = RawSQL("testapp_typedrow.moment AT TIME ZONE 'UTC'", [], output_field=DateTimeField())
    return TypedRow.objects.order_by("pk").values_list("moment", naive, "day", "clock")


@pytest.fixture
def database_time_zone():
    """Sets the database connections' TIME_ZONE (the session zone Django reads datetimes in)."""

    wrapper = connections["default"]  # not the proxy: its cached properties are the wrapper's

    def reset() -> None:
        for name in ("timezone", "timezone_name"):
            wrapper.__dict__.pop(name, None)
        wrapper.close()  # the next connection sets its session's zone

    original = wrapper.settings_dict["TIME_ZONE"]

    def set_zone(name: str | None) -> None:
        wrapper.settings_dict["TIME_ZONE"] = name
        reset()

    yield set_zone
    wrapper.settings_dict["TIME_ZONE"] = original
    reset()


@pytest.mark.parametrize(
    "zone_name",
    [None, "UTC", "Asia/Kolkata", "America/Argentina/Buenos_Aires", "Africa/Monrovia"],
)
def test_datetimes_in_every_session_zone_are_the_same_bytes(
    user, monkeypatch, copy_calls, database_time_zone, zone_name
):
    make_moments()
    database_time_zone(zone_name)
    content = same_bytes(
        user, monkeypatch, copy_calls, ["Moment", "Naive", "Day", "Clock"], moment_rows
    ).decode()
    offset = {"Asia/Kolkata": "+05:30", "America/Argentina/Buenos_Aires": "-03:00"}
    assert f"{offset.get(zone_name, '+00:00')},2024-01-15 04:00:00," in content
    assert ",2024-03-01 12:34:56.123456,0005-01-01,23:59:59.999999\r\n" in content
    assert ",2024-03-01 12:34:56.500000,2024-02-29,01:02:03.450000\r\n" in content
    assert ",2024-03-01 12:34:56,0001-01-01,00:00:00\r\n" in content


def test_naive_datetimes_when_use_tz_is_off(user, settings, monkeypatch, copy_calls):
    make_moments()
    settings.USE_TZ = False
    settings.TIME_ZONE = "Asia/Kolkata"
    content = same_bytes(
        user, monkeypatch, copy_calls, ["Moment", "Naive", "Day", "Clock"], moment_rows
    ).decode()
    assert "\r\n2024-03-01 18:04:56,2024-03-01 12:34:56,0001-01-01,00:00:00\r\n" in content


@pytest.mark.parametrize("neutralize", [True, False])
def test_decimals_of_every_scale_are_the_same_bytes(
    user, settings, monkeypatch, copy_calls, neutralize
):
    set_reports(settings, NEUTRALIZE_FORMULAS=neutralize)
    values = ["5", "-5", "0", "-12.5", "12.50", "-0.000001", "0.0000001", "-0.00000010"]
    values += ["0.0000000000", "-0.0000000001", "1.0000000000", "123456789.123456789"]
    values += ["0.000009999", "9999999999.9999999999", "0.123456", "-0.1234567"]
    for index, value in enumerate(values):
        TypedRow.objects.create(label=value, number=-(3**index))
    content = same_bytes(
        user,
        monkeypatch,
        copy_calls,
        ["Value", "Number"],
        lambda: TypedRow.objects.order_by("pk").values_list(
            RawSQL("testapp_typedrow.label::numeric", [], output_field=DecimalField()), "number"
        ),
    )
    assert b"\r\n0E-10,-6561\r\n" in content and b"\r\n-1E-10,-19683\r\n" in content


FIRST_CHARACTERS = [
    *(f"{trigger}x" for trigger in ("=", "+", "-", "@", "\t", "\r")),
    *("=", "+", "-", "@", "\t", "\r"),
    *("-12.5", "+3", ".5", "-.5", "5.", "-5e3", "1e-5", "--5", "-1,5", "+ 3"),
    *("A", "@A", "B", "a", "~", "0=x", " =x", "?", "é=x", "\u00a0-1", ""),
    None,
]


@pytest.mark.parametrize("neutralize", [True, False])
def test_text_starting_with_every_trigger_is_the_same_bytes(
    user, settings, monkeypatch, copy_calls, neutralize
):
    set_reports(settings, NEUTRALIZE_FORMULAS=neutralize)
    for text in FIRST_CHARACTERS:
        TypedRow.objects.create(label=text, note=text)
    content = same_bytes(
        user,
        monkeypatch,
        copy_calls,
        ["Label", "Note"],
        lambda: TypedRow.objects.order_by("pk").values_list("label", "note"),
    ).decode()
    assert ("\r\n'=x,'=x\r\n" in content) is neutralize
    assert "\r\n-12.5,-12.5\r\n" in content and "\r\n,\r\n" in content


def test_a_report_counting_fewer_rows_than_copy_min_rows_takes_the_rows_path(
    user, settings, copy_calls
):
    """The default threshold: a small report skips the fast path's fixed cost, same bytes."""
    make_typed_rows()
    rows = TypedRow.objects.count()
    set_reports(settings, COPY_MIN_ROWS=rows + 1)
    small = run_csv(user)
    assert copy_calls == []
    set_reports(settings, COPY_MIN_ROWS=rows)
    assert run_csv(user) == small
    assert len(copy_calls) == 1


def test_copy_min_rows_defaults_to_2000_and_is_checked(settings):
    from django_async_reports.checks import check_settings
    from django_async_reports.conf import DEFAULTS

    assert DEFAULTS["COPY_MIN_ROWS"] == 2000
    for wrong in (-1, 2.5, True, "2000"):
        set_reports(settings, COPY_MIN_ROWS=wrong)
        assert "django_async_reports.E062" in [m.id for m in check_settings(None)]
    set_reports(settings, COPY_MIN_ROWS=0)
    assert "django_async_reports.E062" not in [m.id for m in check_settings(None)]


@pytest.mark.django_db(transaction=False)
def test_inside_a_transaction_the_rows_path_sees_its_uncommitted_rows(user, copy_calls):
    """A host's TestCase wraps each test in a transaction that COPY's own connection cannot
    see into: the rows path writes the report, with the transaction's rows."""
    make_typed_rows()
    body = run_csv(user)
    assert copy_calls == []
    parsed = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert len(parsed) == TypedRow.objects.count() + 1  # the header, every row
