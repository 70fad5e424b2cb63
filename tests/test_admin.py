"""The Report admin: changelist, read-only detail page, download, and the service-backed actions."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils.html import escape

from django_async_reports.admin import ReportAdmin
from django_async_reports.models import Report
from django_async_reports.storage import report_storage
from tests.conftest import close_streamed_file
from tests.factories import ReportFactory, UserFactory
from tests.helpers import messages_of, run_action

pytestmark = pytest.mark.django_db

Status = Report.Status
CHANGELIST = reverse("admin:django_async_reports_report_changelist")


def change_url(report: Report) -> str:
    return reverse("admin:django_async_reports_report_change", args=[report.pk])


def download_url(report: Report) -> str:
    return reverse("admin:django_async_reports_report_download", args=[report.pk])


@pytest.fixture
def one_of_each(user):
    """A report in every status, with the fields the worker would have written."""
    return {
        Status.PENDING: ReportFactory(user=user, title="Pending one", status=Status.PENDING),
        Status.PROCESSING: ReportFactory(
            user=user,
            title="Running one",
            status=Status.PROCESSING,
            progress=42,
            progress_message="Generating",
        ),
        Status.COMPLETED: ReportFactory(
            user=user,
            title="Done one",
            status=Status.COMPLETED,
            progress=100,
            result_data={"format": "csv", "row_count": 3},
        ),
        Status.FAILED: ReportFactory(
            user=user,
            title="Broken one",
            status=Status.FAILED,
            error_message="ConnectionError: the data source is down",
        ),
        Status.CANCELLED: ReportFactory(user=user, title="Stopped one", status=Status.CANCELLED),
    }


def completed_with_file(owner, content: bytes = b"n,square\r\n1,1\r\n") -> Report:
    report = ReportFactory(
        user=owner,
        title="Monthly sales",
        status=Status.COMPLETED,
        progress=100,
        result_data={"format": "csv", "row_count": 1},
    )
    name = report_storage.save(
        f"reports/{owner.pk}/{report.pk}/monthly-sales.csv", ContentFile(content)
    )
    Report.objects.filter(pk=report.pk).update(result_file=name)
    report.refresh_from_db()
    return report


# -- changelist ----------------------------------------------------------------
def test_changelist_lists_every_status_with_badge_and_progress_bar(admin_client, one_of_each):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 5
    html = response.content.decode()
    for status, report in one_of_each.items():
        assert report.title in html
        assert f'async-report-status async-report-status-{status}"' in html
    assert '<progress class="async-report-progress" value="42" max="100"' in html
    assert "django_async_reports/admin.css" in html


@pytest.mark.parametrize("status", Status.values)
def test_changelist_filters_by_status(admin_client, one_of_each, status):
    response = admin_client.get(CHANGELIST, {"status__exact": status})

    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [one_of_each[status].pk]


def test_changelist_filters_by_priority(admin_client, user):
    urgent = ReportFactory(user=user, priority=Report.Priority.URGENT)
    ReportFactory(user=user, priority=Report.Priority.LOW)

    response = admin_client.get(CHANGELIST, {"priority__exact": "urgent"})

    assert [r.pk for r in response.context["cl"].result_list] == [urgent.pk]


def test_report_type_filter_offers_registered_and_stored_types(admin_client, user):
    numbers = ReportFactory(user=user, report_type="numbers")
    legacy = ReportFactory(user=user, report_type="legacy_export")

    response = admin_client.get(CHANGELIST)

    type_filter = next(
        spec
        for spec in response.context["cl"].filter_specs
        if getattr(spec, "parameter_name", None) == "report_type"
    )
    choices = dict(type_filter.lookup_choices)
    # Every generator of the test app, registered or not yet used...
    assert choices["numbers"] == "Numbers"
    assert choices["sales"] == "Sales report"
    # ...plus a type left in the table by a generator since removed.
    assert choices["legacy_export"] == "legacy_export (not registered)"

    response = admin_client.get(CHANGELIST, {"report_type": "legacy_export"})
    assert [r.pk for r in response.context["cl"].result_list] == [legacy.pk]
    response = admin_client.get(CHANGELIST, {"report_type": "numbers"})
    assert [r.pk for r in response.context["cl"].result_list] == [numbers.pk]


def test_changelist_filters_by_created_at_and_date_hierarchy(admin_client, one_of_each):
    report = one_of_each[Status.PENDING]
    created = report.created_at

    response = admin_client.get(
        CHANGELIST, {"created_at__year": created.year, "created_at__month": created.month}
    )

    assert response.status_code == 200
    assert response.context["cl"].result_count == 5
    response = admin_client.get(CHANGELIST, {"created_at__year": created.year - 1})
    assert response.context["cl"].result_count == 0


@pytest.mark.parametrize(
    "term",
    ["Quarterly", "carol", "carol@corp.example", "celery-task-abc", "REPORT-ID-PREFIX"],
)
def test_changelist_search(admin_client, one_of_each, term):
    carol = UserFactory(username="carol", email="carol@corp.example")
    target = ReportFactory(user=carol, title="Quarterly revenue", celery_task_id="celery-task-abc")
    if term == "REPORT-ID-PREFIX":
        term = str(target.pk)[:13]

    response = admin_client.get(CHANGELIST, {"q": term})

    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [target.pk]


def test_changelist_query_count_does_not_grow_with_rows(
    admin_client, user, django_assert_max_num_queries
):
    for n in range(30):
        ReportFactory(user=UserFactory(username=f"requester{n}"))
    admin_client.get(CHANGELIST)  # warm the session and content-type caches

    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)
    assert response.context["cl"].result_count == 30


# -- detail page -----------------------------------------------------------------
def test_detail_page_shows_error_and_is_read_only(admin_client, one_of_each):
    failed = one_of_each[Status.FAILED]

    response = admin_client.get(change_url(failed))

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        '<pre class="async-report-pre async-report-error">'
        "ConnectionError: the data source is down</pre>"
    ) in html
    assert "async-report-status-failed" in html
    # View-only: no form fields and no save button.
    assert response.context["adminform"].form.fields == {}
    assert 'name="_save"' not in html
    assert "Available once the report is completed." in html


def test_detail_page_pretty_prints_json_and_escapes_it(admin_client, user):
    report = ReportFactory(
        user=user,
        status=Status.COMPLETED,
        parameters={"text": "<script>alert(1)</script>", "count": 3},
        result_data={"format": "csv", "row_count": 3},
    )

    html = admin_client.get(change_url(report)).content.decode()

    assert escape('{\n  "format": "csv",\n  "row_count": 3\n}') in html
    assert escape('"text": "<script>alert(1)</script>"') in html
    assert "<script>alert(1)</script>" not in html


def test_detail_page_cannot_be_saved(admin_client, one_of_each):
    pending = one_of_each[Status.PENDING]

    response = admin_client.post(change_url(pending), {"title": "Hijacked", "status": "completed"})

    assert response.status_code == 403
    pending.refresh_from_db()
    assert (pending.title, pending.status) == ("Pending one", Status.PENDING)


def test_detail_page_of_unregistered_type_still_renders(admin_client, user):
    report = ReportFactory(user=user, report_type="legacy_export")

    response = admin_client.get(change_url(report))

    assert response.status_code == 200
    assert "legacy_export (not registered)" in response.content.decode()


# -- download --------------------------------------------------------------------
def test_completed_report_links_to_a_download_any_staff_can_use(admin_client, other_user):
    # Requested by someone else: the API's download route would answer 404.
    report = completed_with_file(other_user)

    html = admin_client.get(change_url(report)).content.decode()
    assert f'href="{download_url(report)}"' in html

    response = admin_client.get(download_url(report))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="monthly-sales.csv"'
    assert response["Content-Type"].startswith("text/csv")
    assert b"".join(response.streaming_content) == b"n,square\r\n1,1\r\n"
    close_streamed_file(response)
    assert admin_client.post(download_url(report)).status_code == 405


@pytest.mark.parametrize("status", [Status.PENDING, Status.FAILED])
def test_download_of_unfinished_report_is_404(admin_client, user, status):
    report = ReportFactory(user=user, status=status)
    assert admin_client.get(download_url(report)).status_code == 404


def test_download_of_missing_file_or_report_is_404(admin_client, user):
    report = ReportFactory(user=user, status=Status.COMPLETED, result_file="reports/gone.csv")
    assert admin_client.get(download_url(report)).status_code == 404
    assert (
        admin_client.get(
            reverse("admin:django_async_reports_report_download", args=["not-a-uuid"])
        ).status_code
        == 404
    )


def test_download_needs_staff_with_view_permission(client, user, other_user):
    report = completed_with_file(other_user)

    client.force_login(user)  # not staff: sent to the admin login
    response = client.get(download_url(report))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]

    user.is_staff = True
    user.save()
    assert client.get(download_url(report)).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="view_report"))
    response = client.get(download_url(report))
    assert response.status_code == 200
    close_streamed_file(response)


# -- permissions -----------------------------------------------------------------
def test_no_add_permission(admin_client, admin_user, rf):
    request = rf.get("/")
    request.user = admin_user
    assert ReportAdmin(Report, admin.site).has_add_permission(request) is False

    response = admin_client.get(reverse("admin:django_async_reports_report_add"))
    assert response.status_code == 403
    changelist = admin_client.get(CHANGELIST).content.decode()
    assert reverse("admin:django_async_reports_report_add") not in changelist


def test_view_only_staff_sees_no_actions(client, user, one_of_each):
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_report"))
    client.force_login(user)

    response = client.get(CHANGELIST)
    assert response.status_code == 200
    # No change or delete permission: not one action is offered.
    assert response.context["action_form"] is None

    run_action(client, CHANGELIST, "cancel_reports", one_of_each[Status.PENDING])
    assert Report.objects.get(pk=one_of_each[Status.PENDING].pk).status == Status.PENDING


# -- actions ---------------------------------------------------------------------
def test_cancel_action_cancels_active_reports_and_skips_finished_ones(
    admin_client, admin_user, one_of_each
):
    pending = one_of_each[Status.PENDING]
    processing = one_of_each[Status.PROCESSING]
    completed = one_of_each[Status.COMPLETED]

    response = run_action(
        admin_client, CHANGELIST, "cancel_reports", pending, processing, completed
    )

    assert response.status_code == 200
    statuses = dict(Report.objects.values_list("pk", "status"))
    assert statuses[pending.pk] == Status.CANCELLED
    assert statuses[processing.pk] == Status.CANCELLED
    assert statuses[completed.pk] == Status.COMPLETED
    assert Report.objects.get(pk=pending.pk).completed_at is not None
    assert messages_of(response) == [
        ("success", "2 reports cancelled."),
        (
            "warning",
            "1 report skipped: only pending or processing reports can be cancelled (Done one).",
        ),
    ]
    logged = LogEntry.objects.filter(user=admin_user, action_flag=CHANGE)
    assert set(logged.values_list("object_id", flat=True)) == {str(pending.pk), str(processing.pk)}


def test_cancel_action_with_nothing_to_cancel_only_warns(admin_client, one_of_each):
    response = run_action(
        admin_client,
        CHANGELIST,
        "cancel_reports",
        one_of_each[Status.FAILED],
        one_of_each[Status.CANCELLED],
    )

    assert [level for level, _text in messages_of(response)] == ["warning"]
    assert "2 reports skipped" in messages_of(response)[0][1]
    assert Report.objects.get(pk=one_of_each[Status.FAILED].pk).status == Status.FAILED


def test_retry_action_requeues_failed_and_cancelled_reports(
    admin_client, one_of_each, captured_dispatches, django_capture_on_commit_callbacks
):
    failed = one_of_each[Status.FAILED]
    cancelled = one_of_each[Status.CANCELLED]
    completed = one_of_each[Status.COMPLETED]
    old_task_id = failed.celery_task_id

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(
            admin_client, CHANGELIST, "retry_reports", failed, cancelled, completed
        )

    failed.refresh_from_db()
    assert failed.status == Status.PENDING
    assert failed.error_message == ""
    assert failed.celery_task_id and failed.celery_task_id != old_task_id
    assert Report.objects.get(pk=cancelled.pk).status == Status.PENDING
    assert Report.objects.get(pk=completed.pk).status == Status.COMPLETED
    assert sorted(str(r.pk) for r in captured_dispatches) == sorted(
        [str(failed.pk), str(cancelled.pk)]
    )
    assert messages_of(response) == [
        ("success", "2 reports queued again."),
        (
            "warning",
            "1 report skipped: only failed or cancelled reports can be retried (Done one).",
        ),
    ]


def test_retry_action_skips_active_reports_without_dispatching(
    admin_client, one_of_each, captured_dispatches, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(
            admin_client,
            CHANGELIST,
            "retry_reports",
            one_of_each[Status.PENDING],
            one_of_each[Status.PROCESSING],
        )

    assert captured_dispatches == []
    assert Report.objects.get(pk=one_of_each[Status.PROCESSING].pk).status == Status.PROCESSING
    assert messages_of(response)[0][0] == "warning"


def test_regenerate_action_creates_new_reports_for_the_requester(
    admin_client, admin_user, user, captured_dispatches, django_capture_on_commit_callbacks
):
    original = ReportFactory(
        user=user,
        title="Numbers again",
        status=Status.COMPLETED,
        parameters={"count": 5, "delay": 0.0, "text": "x"},
        priority=Report.Priority.HIGH,
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, CHANGELIST, "regenerate_reports", original)

    new = Report.objects.exclude(pk=original.pk).get()
    assert new.user == user
    assert (new.title, new.report_type, new.priority, new.status) == (
        "Numbers again",
        "numbers",
        Report.Priority.HIGH,
        Status.PENDING,
    )
    assert new.parameters == original.parameters
    assert [r.pk for r in captured_dispatches] == [new.pk]
    assert Report.objects.get(pk=original.pk).status == Status.COMPLETED
    assert messages_of(response) == [("success", "1 report regenerated as a new pending report.")]
    assert LogEntry.objects.filter(
        user=admin_user, action_flag=ADDITION, object_id=str(new.pk)
    ).exists()


def test_regenerate_action_skips_unknown_types_and_invalid_parameters(
    admin_client, user, captured_dispatches, django_capture_on_commit_callbacks
):
    legacy = ReportFactory(user=user, title="Old export", report_type="legacy_export")
    invalid = ReportFactory(user=user, title="Too many", parameters={"count": -1})

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, CHANGELIST, "regenerate_reports", legacy, invalid)

    assert Report.objects.count() == 2
    assert captured_dispatches == []
    texts = sorted(text for level, text in messages_of(response) if level == "warning")
    assert len(texts) == 2
    assert texts[0].startswith("Old export was not regenerated:")
    assert "legacy_export" in texts[0]
    assert texts[1].startswith("Too many was not regenerated: its parameters are no longer valid")
    assert "count" in texts[1]


@pytest.mark.django_db(transaction=True)
def test_admin_delete_goes_through_the_service_and_removes_files(admin_client, user):
    from django_async_reports import services
    from django_async_reports.storage import report_storage

    report = ReportFactory(user=user)
    report = services.generate(services.claim_report(report.pk))
    services.post_process(report.pk)
    name = report.result_file.name
    assert report_storage.exists(name)
    url = reverse("admin:django_async_reports_report_changelist")
    response = admin_client.post(
        url, {"action": "delete_selected", "_selected_action": [str(report.pk)], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Report.objects.filter(pk=report.pk).exists()
    assert not report_storage.exists(name)
