"""django_async_reports.testing: the helpers host projects test their generators with.

On the real PostgreSQL test database, inside the test's transaction (the ``db``
fixture, and a Django ``TestCase``), with no worker: what a host's test sees.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import subprocess
import sys
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import TestCase
from rest_framework.exceptions import ValidationError

from django_async_reports.models import Report
from django_async_reports.testing import read_file, read_rows, run_report
from tests.broker_admin import vhost
from tests.factories import SaleFactory, UserFactory
from tests.helpers import ROOT, set_reports

pytestmark = pytest.mark.django_db
pytest_plugins = ["pytester"]

NUMBERS = {"count": 3, "delay": 0, "text": "a&b"}


def no_broker(*args, **kwargs):
    raise ConnectionRefusedError("no broker in a host's unit tests")


@pytest.fixture(autouse=True)
def _without_a_broker(monkeypatch):
    """Any publish fails, as in a host's test run without a broker: nothing may need one."""
    monkeypatch.setattr("django_async_reports.publisher.connection", no_broker)


def test_a_report_runs_to_completed_and_its_csv_reads_back(user):
    report = run_report("numbers", user=user, parameters=NUMBERS)

    assert (report.status, report.progress, report.next_step) == ("completed", 100, "")
    assert report.result_data["row_count"] == 3
    assert read_rows(report) == [
        {"n": "1", "square": "1", "text": "a&b"},
        {"n": "2", "square": "4", "text": "a&b"},
        {"n": "3", "square": "9", "text": "a&b"},
    ]
    assert read_file(report).startswith(b"n,square,text\r\n1,1,a&b\r\n")


@pytest.mark.parametrize(
    ("fmt", "compress"),
    [("csv", True), ("json", False), ("json", True), ("ndjson", False), ("ndjson", True)],
)
def test_json_ndjson_and_gzipped_files_read_back(user, fmt, compress):
    report = run_report("numbers", user=user, parameters=NUMBERS, format=fmt, compress=compress)

    assert report.status == "completed"
    assert report.result_file.name.endswith(".gz") is compress
    rows = read_rows(report)
    assert [row["square"] for row in rows] == (["1", "4", "9"] if fmt == "csv" else [1, 4, 9])
    assert rows[0]["text"] == "a&b"


def test_xlsx_reads_back_typed_and_skips_the_summary_sheet(user):
    # sales has a summary (a "Summary" sheet), which is not rows.
    sale = SaleFactory(owner=user, sold_on=datetime.date(2024, 12, 3), amount=Decimal("12.50"))
    params = {"start_date": "2024-12-01", "end_date": "2024-12-31"}
    report = run_report("sales", user=user, parameters=params, format="xlsx")

    assert report.status == "completed"
    [row] = read_rows(report)
    assert row["sale_id"] == sale.pk
    assert row["customer"] == sale.customer
    assert row["amount"] == 12.5
    assert row["date"].date() == datetime.date(2024, 12, 3)


def test_xlsx_needs_openpyxl_and_says_so(user, monkeypatch):
    report = run_report("numbers", user=user, parameters=NUMBERS, format="xlsx")
    monkeypatch.setitem(sys.modules, "openpyxl", None)

    with pytest.raises(ImportError, match="pip install openpyxl"):
        read_rows(report)


def test_other_formats_are_refused_by_read_rows_and_read_by_read_file(user):
    report = run_report("numbers", user=user, parameters=NUMBERS, format="pdf")

    assert report.status == "completed"
    with pytest.raises(ValueError, match='not "pdf"'):
        read_rows(report)
    assert read_file(report).startswith(b"%PDF-")


@pytest.mark.parametrize("parts", [0, 2])
def test_queryset_rows_uncommitted_in_the_test_are_in_the_file(user, parts):
    """A QuerySet's CSV (the COPY fast path outside a transaction) sees the test's rows,
    and a partitioned report runs its parts and assembles them in-process too."""
    sales = SaleFactory.create_batch(4, owner=user)

    report = run_report("partitioned_sales", user=user, parameters={"parts": parts})

    assert report.status == "completed"
    assert [int(row["sale_id"]) for row in read_rows(report)] == [s.pk for s in sales]


def test_a_failing_generator_gives_a_failed_report_with_its_error(user):
    report = run_report("refusing", user=user)

    assert report.status == "failed"
    assert report.error_message == "No sales were recorded in that period."
    assert "ReportError: No sales were recorded" in report.error_detail
    with pytest.raises(ValueError, match=r"has no file: it is failed \(No sales were recorded"):
        read_rows(report)


def test_a_transient_error_is_retried_at_once_then_fails(user, settings):
    set_reports(settings, MAX_RETRIES=2)

    report = run_report("broken", user=user)

    assert (report.status, report.retry_count) == ("failed", 2)
    assert "ConnectionError: the data source is down" in report.error_detail


def test_a_generator_that_recovers_on_retry_completes(user):
    report = run_report("flaky", user=user, parameters={"key": "helper", "failures": 1})

    assert (report.status, report.retry_count) == ("completed", 1)
    assert read_rows(report) == [{"attempt": "2"}]


def test_bad_parameters_raise_the_validation_error_of_the_api(user):
    with pytest.raises(ValidationError) as raised:
        run_report("numbers", user=user, parameters={"count": -1, "delay": "soon"})

    assert set(raised.value.detail) == {"count", "delay"}
    assert raised.value.detail["count"] == ["Ensure this value is greater than or equal to 0."]
    assert not Report.objects.exists()


def test_a_parameters_class_validate_error_names_its_field(user):
    params = {"start_date": "2024-12-31", "end_date": "2024-12-01"}
    with pytest.raises(ValidationError) as raised:
        run_report("sales", user=user, parameters=params)

    assert raised.value.detail == {"end_date": ["Must not be before start_date."]}


def test_a_format_the_type_does_not_offer_is_refused(user):
    with pytest.raises(ValidationError) as raised:
        run_report("csv_only", user=user, format="xlsx")

    assert list(raised.value.detail) == ["format"]


def test_options_reach_the_request_and_the_e_mail_is_sent(user, mailoutbox):
    report = run_report(
        "numbers", user=user, parameters=NUMBERS, title="Q4", priority="high", send_email=True
    )

    assert (report.title, report.priority, report.status) == ("Q4", "high", "completed")
    assert report.notified_at is not None
    [message] = mailoutbox
    assert message.to == [user.email]


class RunReportInATestCase(TestCase):
    """The same in Django's TestCase: its transaction is never committed either."""

    def test_completed(self):
        user = UserFactory(username="carol")
        report = run_report("numbers", user=user, parameters={"count": 2})

        self.assertEqual(report.status, "completed")
        self.assertEqual([row["n"] for row in read_rows(report)], ["1", "2"])


def test_the_module_imports_without_pytest():
    """pytest is no dependency: without it the functions are there, the fixture is not."""
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import django; django.setup()\n"
        "from django_async_reports import testing\n"
        "assert callable(testing.run_report) and callable(testing.read_rows)\n"
        "assert not hasattr(testing, 'run_report_fixture')\n"
        "print('imported')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


# -- the guide's host tests, run as a host runs them ------------------------------------
GUIDE = ROOT / "docs_src" / "how_to" / "testing_generators"

#: What a host project has without its tests' help: its Celery app loaded (its
#: proj/__init__.py imports it) and its generator registered (its reports.py).
HOST_PROJECT = """

import pytest

import tests.celery_app  # noqa: F401
from django_async_reports.registry import registry
from docs_src.how_to.testing_generators.reports import SignupsReport


@pytest.fixture(scope="session", autouse=True)
def _signups_registered():
    registry.register(SignupsReport)
    yield
    registry.unregister("signups")
"""


@pytest.mark.parametrize(
    ("test_file", "celery_settings", "passed"),
    [
        ("host_tests.py", {}, 6),
        ("host_eager_tests.py", {"task_always_eager": True}, 1),
        # A real worker (in a thread) on the real RabbitMQ, the suite's own queues.
        ("host_worker_tests.py", {}, 1),
    ],
)
def test_the_guide_s_tests_pass_as_a_host_runs_them(
    pytester, monkeypatch, test_file, celery_settings, passed
):
    """A conftest with ``pytest_plugins = ["django_async_reports.testing"]`` (the guide's)
    and the guide's test file, in a pytest run of their own on a test database of its own."""
    pytester.makeconftest((GUIDE / "host_conftest.py").read_text() + HOST_PROJECT)
    pytester.makepyfile(test_signups=(GUIDE / test_file).read_text())
    outer_test_db = os.environ.get("ASYNC_REPORTS_TEST_DB_TEST_NAME", "test_async_reports")
    monkeypatch.setenv("ASYNC_REPORTS_TEST_DB_TEST_NAME", f"{outer_test_db}_host")
    monkeypatch.setenv("ASYNC_REPORTS_TEST_CELERY_OVERRIDES", json.dumps(celery_settings))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    with contextlib.ExitStack() as stack:
        if test_file == "host_worker_tests.py":
            # A vhost of its own: its worker meets no message other tests left in the
            # suite's queues, and everything it declares goes with the vhost.
            tag = f"host_worker_{settings.QUEUE_PREFIX}_{secrets.token_hex(4)}".lower()
            monkeypatch.setenv("ASYNC_REPORTS_TEST_BROKER_URL", stack.enter_context(vhost(tag)))
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")

    result.assert_outcomes(passed=passed)
