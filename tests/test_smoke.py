import pytest

from django_async_reports import services
from django_async_reports.models import Report


@pytest.mark.django_db(transaction=True)
def test_request_report_dispatches_after_commit(user, captured_dispatches):
    report = services.request_report(user=user, report_type="numbers", parameters={"count": 2})
    assert report.status == Report.Status.PENDING
    assert [r.pk for r in captured_dispatches] == [report.pk]
