"""docs/how-to/cancellation.md: a long generator cancelled between two slow calls.

The generator is the page's (``docs_src/how_to/cancellation/reports.py``); its
``SupplierAPI`` is replaced by one whose pages come at once and which cancels
the report, as its requester would, while page 3 is being read. The run is
the worker's (``services.generate`` and the ``generate_report`` task) on
PostgreSQL, in this process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from django_async_reports import ReportGenerator, services
from django_async_reports.exceptions import ReportCancelled
from django_async_reports.models import Report
from django_async_reports.tasks import generate_report
from tests.factories import ReportFactory
from tests.helpers import csv_rows, set_reports
from tests.howto_modules import guide_module

pytestmark = pytest.mark.django_db

PAGES = 10


class FakeSupplierAPI:
    """Ten pages of two prices each; cancels ``report`` while page ``cancel_on`` is read."""

    calls: list[int]
    closed: bool

    def __init__(self, report=None, cancel_on=None):
        self.report, self.cancel_on = report, cancel_on
        self.calls, self.closed = [], False

    def __call__(self, timeout):  # stands in for the class: SupplierAPI(timeout=30)
        assert timeout == 30
        return self

    def page_count(self):
        return PAGES

    def prices(self, page):
        self.calls.append(page)
        if page == self.cancel_on:
            services.cancel_report(Report.objects.get(pk=self.report.pk))
        return [{"sku": f"p{page}-{i}", "price": page * 10 + i} for i in range(2)]

    def close(self):
        self.closed = True


@pytest.fixture
def guide():
    with guide_module("docs_src.how_to.cancellation.reports") as module:
        yield module


@pytest.fixture
def report(user, settings):
    # Every call looks: the test needs to know which page the cancel is seen at.
    set_reports(settings, CANCEL_CHECK_INTERVAL=0)
    return ReportFactory(user=user, report_type="supplier_prices", parameters={})


def stored_files(report) -> list[Path]:
    root = Path(django_settings.MEDIA_ROOT)
    return [p for p in root.glob(f"reports/*/{report.pk}/**/*") if p.is_file()]


def test_a_cancel_between_two_pages_stops_the_run_and_keeps_no_file(guide, report, monkeypatch):
    api = FakeSupplierAPI(report, cancel_on=3)
    monkeypatch.setattr(guide, "SupplierAPI", api)
    claimed = services.claim_report(report.pk)

    with pytest.raises(ReportCancelled):
        services.generate(claimed)

    assert api.calls == [1, 2, 3]  # page 4 was never asked for
    assert api.closed  # the finally ran
    report.refresh_from_db()
    assert report.status == Report.Status.CANCELLED
    assert report.result_file.name == ""
    assert report.result_data == {}
    assert stored_files(report) == []


def test_the_task_returns_cancelled(guide, report, monkeypatch):
    api = FakeSupplierAPI(report, cancel_on=2)
    monkeypatch.setattr(guide, "SupplierAPI", api)

    result = generate_report.apply(args=[str(report.pk)])

    assert result.get() == {"report_id": str(report.pk), "status": "cancelled"}
    assert api.calls == [1, 2] and api.closed
    report.refresh_from_db()
    assert report.status == Report.Status.CANCELLED
    assert report.error_message == ""
    assert stored_files(report) == []


def test_without_the_check_every_page_is_read_before_the_cancel_is_seen(guide, report, monkeypatch):
    api = FakeSupplierAPI(report, cancel_on=3)
    monkeypatch.setattr(guide, "SupplierAPI", api)
    monkeypatch.setattr(guide.SupplierPricesReport, "raise_if_cancelled", lambda self: None)
    claimed = services.claim_report(report.pk)

    with pytest.raises(ReportCancelled):  # seen by the run loop, at the first rows
        services.generate(claimed)

    assert api.calls == list(range(1, PAGES + 1))
    assert api.closed
    assert stored_files(report) == []


def test_not_cancelled_it_runs_to_the_end(guide, report, monkeypatch):
    api = FakeSupplierAPI()
    monkeypatch.setattr(guide, "SupplierAPI", api)

    generate_report.apply(args=[str(report.pk)])

    report.refresh_from_db()
    assert report.status == Report.Status.COMPLETED, report.error_message
    assert api.calls == list(range(1, PAGES + 1)) and api.closed
    with report.result_file.open("rb") as fh:
        rows = csv_rows(fh.read())
    assert rows[:3] == [["sku", "price", "rank"], ["p10-1", "101", "1"], ["p10-0", "100", "2"]]
    assert len(rows) == 1 + 2 * PAGES


class TestRaiseIfCancelled:
    def test_reads_the_database_at_most_once_per_interval(
        self, user, settings, django_assert_num_queries
    ):
        set_reports(settings, CANCEL_CHECK_INTERVAL=60)
        claimed = services.claim_report(ReportFactory(user=user).pk)
        generator = ReportGenerator(report=claimed)
        with django_assert_num_queries(1):
            for _ in range(100):
                generator.raise_if_cancelled()

    def test_raises_once_cancelled(self, user, settings):
        set_reports(settings, CANCEL_CHECK_INTERVAL=0)
        claimed = services.claim_report(ReportFactory(user=user).pk)
        generator = ReportGenerator(report=claimed)
        generator.raise_if_cancelled()
        services.cancel_report(claimed)
        with pytest.raises(ReportCancelled):
            generator.raise_if_cancelled()

    def test_raises_for_a_run_another_run_took_over(self, user, settings):
        set_reports(settings, CANCEL_CHECK_INTERVAL=0)
        claimed = services.claim_report(ReportFactory(user=user).pk)
        generator = ReportGenerator(report=claimed)
        Report.objects.filter(pk=claimed.pk).update(attempt=claimed.attempt + 1)
        with pytest.raises(ReportCancelled):
            generator.raise_if_cancelled()

    def test_does_nothing_without_a_saved_report(self, django_assert_num_queries):
        with django_assert_num_queries(0):
            ReportGenerator().raise_if_cancelled()
            ReportGenerator(report=Report()).raise_if_cancelled()
