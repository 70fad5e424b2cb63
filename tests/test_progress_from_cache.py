"""The progress action answers a running report's polls from the cache alone, safely."""

import datetime

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from rest_framework.fields import DateTimeField
from rest_framework.permissions import BasePermission, IsAuthenticated

from django_async_reports import progress, services
from django_async_reports.conf import report_settings
from django_async_reports.models import Report
from tests.factories import ReportFactory
from tests.helpers import PROGRESS_KEYS, detail

pytestmark = pytest.mark.django_db


class OwnerOnly(BasePermission):
    """An object-level rule: the action must load the row for it."""

    def has_object_permission(self, request, view, obj):
        return obj.user_id == request.user.pk


def claimed(user, **fields):
    """A report claimed by a worker: the claim writes the owner and start to the cache."""
    report = ReportFactory(user=user, **fields)
    return services.claim_report(report.pk)


def report_queries(captured):
    table = Report._meta.db_table
    return [q["sql"] for q in captured.captured_queries if table in q["sql"]]


def test_claimed_report_is_answered_without_reading_its_row(auth_client, user):
    report = claimed(user)
    progress.write_cache(report.pk, progress=37, message="Processed 37", rows=37, total=100)
    with CaptureQueriesContext(connection) as captured:
        body = auth_client.get(detail(report, "progress")).json()
    assert report_queries(captured) == []
    assert set(body) == PROGRESS_KEYS
    assert (body["id"], body["status"], body["progress"]) == (str(report.pk), "processing", 37)
    assert (body["rows"], body["total"], body["message"]) == (37, 100, "Processed 37")
    assert body["completed_at"] is None
    # Rendered as DRF renders the row's datetimes (UTC as "Z"), to the microsecond.
    started_at = Report.objects.get(pk=report.pk).started_at
    assert body["started_at"] == DateTimeField().to_representation(started_at)
    assert body["updated_at"].endswith("Z")


def test_another_users_report_is_a_404_even_with_a_fresh_entry(other_client, user):
    report = claimed(user)
    with CaptureQueriesContext(connection) as captured:
        response = other_client.get(detail(report, "progress"))
    assert response.status_code == 404
    assert report_queries(captured)  # the row path decided, among the requester's reports


def test_an_old_entry_is_not_trusted(auth_client, user):
    report = claimed(user)
    # The cancel's cache write was lost (Redis blinked): the row says cancelled.
    Report.objects.filter(pk=report.pk).update(status=Report.Status.CANCELLED)
    entry = progress.read_cache(report.pk)
    entry["updated_at"] = (timezone.now() - datetime.timedelta(seconds=60)).isoformat()
    caches[report_settings.CACHE].set(progress.cache_key(report.pk), entry)
    body = auth_client.get(detail(report, "progress")).json()
    assert body["status"] == "cancelled"


def test_a_finished_report_comes_from_its_row(auth_client, user):
    report = claimed(user)
    services.cancel_report(report)
    body = auth_client.get(detail(report, "progress")).json()
    assert body["status"] == "cancelled"


def test_object_level_permissions_make_it_read_the_row(auth_client, user):
    report = claimed(user)
    rules = {**settings.ASYNC_REPORTS, "PERMISSION_CLASSES": [IsAuthenticated, OwnerOnly]}
    with override_settings(ASYNC_REPORTS=rules), CaptureQueriesContext(connection) as captured:
        body = auth_client.get(detail(report, "progress")).json()
    assert report_queries(captured)
    assert body["status"] == "processing"


def test_query_parameters_of_the_list_do_not_apply(auth_client, user):
    """The list's filters and ordering are no business of one report's progress."""
    report = ReportFactory(user=user, status="completed", progress=100)
    response = auth_client.get(detail(report, "progress") + "?status=pending&ordering=nonsense")
    assert response.status_code == 200
    assert response.json()["status"] == "completed"


def test_an_id_in_capitals_is_answered_with_the_canonical_id(auth_client, user):
    report = claimed(user)
    body = auth_client.get(f"/api/v1/reports/{str(report.pk).upper()}/progress/").json()
    assert (body["id"], body["status"]) == (str(report.pk), "processing")


def test_what_is_no_report_id_never_reaches_the_cache(auth_client, monkeypatch):
    asked = []
    monkeypatch.setattr(progress, "read_cache", lambda report_id: asked.append(report_id))
    response = auth_client.get("/api/v1/reports/" + "x" * 300 + "/progress/")
    assert response.status_code == 404
    assert asked == []
