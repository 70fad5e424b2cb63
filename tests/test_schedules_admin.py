"""The schedule admin: changelist, add / change through the services, execution history,
actions, and the read-only execution and webhook delivery admins."""

from __future__ import annotations

import datetime
import warnings
import zoneinfo

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from django_async_reports.models import (
    Report,
    ReportSchedule,
    ScheduleExecution,
    WebhookDelivery,
)
from tests.factories import ReportFactory, UserFactory
from tests.helpers import make_schedule, messages_of, run_action

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_async_reports_reportschedule_changelist")
ADD = reverse("admin:django_async_reports_reportschedule_add")
EXECUTIONS = reverse("admin:django_async_reports_scheduleexecution_changelist")
DELIVERIES = reverse("admin:django_async_reports_webhookdelivery_changelist")


def change_url(schedule) -> str:
    return reverse("admin:django_async_reports_reportschedule_change", args=[schedule.pk])


def form_data(**changes):
    """What the add / change form posts for a valid weekly schedule."""
    data = {
        "title": "Weekly numbers",
        "report_type": "numbers",
        "priority": "normal",
        "parameters": '{"count": 3, "text": "{{last_week_start}}"}',
        "frequency": "weekly",
        "time_of_day": "07:30:00",
        "weekday": "2",
        "day_of_month": "",
        "cron_expression": "",
        "timezone": "Europe/Paris",
        "enabled": "on",
        "send_email": "on",
        "email_recipients": "boss@example.com\nteam@example.com, BOSS@example.com",
        "webhook_url": "",
        # The execution inline's management form (change page only).
        "executions-TOTAL_FORMS": "0",
        "executions-INITIAL_FORMS": "0",
        "executions-MIN_NUM_FORMS": "0",
        "executions-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def carol(db):
    return UserFactory(username="carol", email="carol@corp.example")


# -- changelist -------------------------------------------------------------------------
def test_changelist_columns(admin_client, user):
    schedule = make_schedule(user, title="Morning numbers")
    ReportSchedule.objects.filter(pk=schedule.pk).update(last_run_at=timezone.now())

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    html = response.content.decode()
    assert "Morning numbers" in html
    assert "alice" in html
    assert "Numbers" in html  # the report type's label
    assert "Daily" in html
    for column in ("enabled", "next_run_at", "last_run_at"):
        assert f"column-{column}" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"enabled__exact": "0"}, ["off"]),
        ({"enabled__exact": "1"}, ["weekly sales", "daily"]),
        ({"frequency__exact": "weekly"}, ["weekly sales"]),
        ({"report_type": "sales"}, ["weekly sales"]),
        ({"send_email__exact": "1"}, ["weekly sales"]),
    ],
)
def test_changelist_filters(admin_client, user, query, expected):
    make_schedule(user, title="daily")
    make_schedule(user, title="off", enabled=False)
    make_schedule(
        user,
        title="weekly sales",
        report_type="sales",
        frequency="weekly",
        parameters={"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"},
        send_email=True,
        email_recipients=["manager@example.com"],
    )

    response = admin_client.get(CHANGELIST, query)

    assert response.status_code == 200
    assert [s.title for s in response.context["cl"].result_list] == expected


@pytest.mark.parametrize("term", ["Quarterly", "carol", "carol@corp.example", "ID-PREFIX"])
def test_changelist_search(admin_client, user, carol, term):
    make_schedule(user, title="Something else")
    target = make_schedule(carol, title="Quarterly revenue")
    if term == "ID-PREFIX":
        term = str(target.pk)[:13]

    response = admin_client.get(CHANGELIST, {"q": term})

    assert [s.pk for s in response.context["cl"].result_list] == [target.pk]


def test_changelist_query_count_does_not_grow_with_rows(
    admin_client, django_assert_max_num_queries
):
    for n in range(25):
        make_schedule(UserFactory(username=f"owner{n}"), title=f"s{n}")
    admin_client.get(CHANGELIST)

    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)
    assert response.context["cl"].result_count == 25


# -- detail page: history ---------------------------------------------------------------
def test_detail_shows_latest_executions_newest_first_and_limited(admin_client, user):
    schedule = make_schedule(
        user, webhook_url="https://93.184.215.14/hook", email_recipients=["a@example.com"]
    )
    start = timezone.now() - datetime.timedelta(days=40)
    for day in range(25):
        ScheduleExecution.objects.create(
            schedule=schedule, due_at=start + datetime.timedelta(days=day), status="completed"
        )
    report = ReportFactory(user=user, status="completed", title="The newest report")
    newest = ScheduleExecution.objects.create(
        schedule=schedule,
        due_at=start + datetime.timedelta(days=30),
        status="failed",
        report=report,
        error="ConnectionError: the data source is down",
    )

    response = admin_client.get(change_url(schedule))

    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    shown = [form.original for form in inline]
    assert len(shown) == 20
    assert shown[0].pk == newest.pk
    assert [e.due_at for e in shown] == sorted((e.due_at for e in shown), reverse=True)
    html = response.content.decode()
    assert "ConnectionError: the data source is down" in html
    assert reverse("admin:django_async_reports_report_change", args=[report.pk]) in html
    # Every execution is one click away; the inline only shows the latest.
    assert f"{EXECUTIONS}?schedule__id__exact={schedule.pk}" in html
    assert "26 executions" in html
    # What the scheduler writes and the generated secret are not editable.
    form = response.context["adminform"].form
    for name in ("next_run_at", "last_run_at", "owner", "webhook_secret"):
        assert name not in form.fields
    # The secret itself is not shown to staff: only its last characters.
    assert schedule.webhook_secret not in html
    assert schedule.webhook_secret[-4:] in html


def test_add_page_has_no_history(admin_client):
    response = admin_client.get(ADD)

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"] == []
    choices = dict(response.context["adminform"].form.fields["report_type"].choices)
    assert choices["sales"] == "Sales report"


# -- add and change through the service layer ---------------------------------------------
def test_add_creates_through_the_service(admin_client, user):
    response = admin_client.post(ADD, form_data(owner=str(user.pk)), follow=True)

    assert response.status_code == 200
    assert not response.context.get("errors"), response.context.get("errors")
    schedule = ReportSchedule.objects.get()
    assert schedule.owner == user
    assert schedule.weekday == 2
    assert schedule.time_of_day == datetime.time(7, 30)
    assert schedule.email_recipients == ["boss@example.com", "team@example.com"]
    assert schedule.parameters == {"count": 3, "text": "{{last_week_start}}"}
    local = schedule.next_run_at.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    assert local.weekday() == 2 and (local.hour, local.minute) == (7, 30)
    assert LogEntry.objects.filter(object_id=str(schedule.pk)).exists()


def test_add_with_a_webhook_generates_its_secret(admin_client, user):
    admin_client.post(
        ADD, form_data(owner=str(user.pk), webhook_url="https://93.184.215.14/hook"), follow=True
    )

    schedule = ReportSchedule.objects.get()
    assert len(schedule.webhook_secret) >= 32


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"frequency": "custom"}, "cron_expression", "needs a cron expression"),
        ({"frequency": "custom", "cron_expression": "61 * * * *"}, "cron_expression", "61"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Mars/Olympus_Mons"),
        ({"email_recipients": "boss@example.com, nope"}, "email_recipients", "valid email"),
        ({"send_email": None, "email_recipients": ""}, None, None),  # valid: no e-mail
        ({"email_recipients": ""}, "email_recipients", "at least one recipient"),
        ({"parameters": '{"text": "{{nope}}"}'}, "parameters", "nope"),
        ({"parameters": '{"count": "many"}'}, "parameters", "count: "),
        ({"report_type": "missing"}, "report_type", "Select a valid choice"),
        ({"webhook_url": "http://10.0.0.5/hook"}, "webhook_url", "not public"),
        ({"webhook_url": "ftp://93.184.215.14/"}, "webhook_url", ""),
    ],
)
def test_add_refuses_bad_input_with_field_errors(admin_client, user, changes, field, message):
    response = admin_client.post(ADD, form_data(owner=str(user.pk), **changes))

    if field is None:
        assert response.status_code == 302
        assert ReportSchedule.objects.count() == 1
        return
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert field in form.errors, form.errors
    assert message in " ".join(form.errors[field])
    assert not ReportSchedule.objects.exists()


def test_add_ignores_timing_fields_the_frequency_does_not_use(admin_client, user):
    admin_client.post(
        ADD,
        form_data(owner=str(user.pk), frequency="daily", weekday="3", cron_expression="0 1 * * *"),
    )

    schedule = ReportSchedule.objects.get()
    assert schedule.weekday is None and schedule.cron_expression == ""


def test_change_goes_through_the_service_and_recomputes_next_run(admin_client, user):
    schedule = make_schedule(user)
    before = schedule.next_run_at

    response = admin_client.post(
        change_url(schedule),
        form_data(frequency="monthly", day_of_month="31", weekday="", timezone="UTC"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    schedule.refresh_from_db()
    assert schedule.frequency == "monthly" and schedule.day_of_month == 31
    assert schedule.weekday is None
    assert schedule.next_run_at != before
    assert (schedule.next_run_at.hour, schedule.next_run_at.minute) == (7, 30)
    assert schedule.owner == user  # read-only on the change page


def test_change_with_bad_input_changes_nothing(admin_client, user):
    schedule = make_schedule(user)
    before = ReportSchedule.objects.values().get(pk=schedule.pk)

    response = admin_client.post(
        change_url(schedule), form_data(frequency="custom", cron_expression="nope")
    )

    assert response.status_code == 200
    assert "cron_expression" in response.context["adminform"].form.errors
    assert ReportSchedule.objects.values().get(pk=schedule.pk) == before


def test_change_page_posts_with_history_shown(admin_client, user):
    schedule = make_schedule(user)
    for day in range(3):
        ScheduleExecution.objects.create(
            schedule=schedule, due_at=timezone.now() - datetime.timedelta(days=day)
        )
    data = form_data(
        title="Renamed",
        **{"executions-TOTAL_FORMS": "3", "executions-INITIAL_FORMS": "3"},
    )
    for index, execution in enumerate(schedule.executions.order_by("-due_at")):
        data[f"executions-{index}-id"] = str(execution.pk)
        data[f"executions-{index}-schedule"] = str(schedule.pk)

    response = admin_client.post(change_url(schedule), data)

    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.title == "Renamed"
    assert schedule.executions.count() == 3


# -- actions ------------------------------------------------------------------------------
def test_enable_and_disable_actions(admin_client, user):
    on = make_schedule(user, title="on")
    off = make_schedule(user, title="off", enabled=False)

    response = run_action(admin_client, CHANGELIST, "disable_schedules", on, off)

    assert ("success", "1 schedule disabled.") in messages_of(response)
    on.refresh_from_db()
    assert on.enabled is False and on.next_run_at is None
    assert LogEntry.objects.filter(
        object_id=str(on.pk), action_flag=CHANGE, change_message="Disabled."
    ).exists()

    response = run_action(admin_client, CHANGELIST, "enable_schedules", on, off)

    assert ("success", "2 schedules enabled.") in messages_of(response)
    for schedule in (on, off):
        schedule.refresh_from_db()
        assert schedule.enabled is True and schedule.next_run_at > timezone.now()


def test_run_now_action(
    admin_client, user, captured_dispatches, django_capture_on_commit_callbacks
):
    first = make_schedule(user, title="first")
    second = make_schedule(user, title="second", enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, CHANGELIST, "run_schedules_now", first, second)

    assert ("success", "2 schedules run now: their reports are queued.") in messages_of(response)
    executions = ScheduleExecution.objects.filter(trigger="manual")
    assert executions.count() == 2
    reports = Report.objects.filter(pk__in=executions.values("report"))
    assert {r.user for r in reports} == {user}
    assert sorted(r.pk for r in captured_dispatches) == sorted(r.pk for r in reports)
    assert LogEntry.objects.filter(object_id=str(first.pk), action_flag=CHANGE).exists()


def test_run_now_action_reports_a_run_that_cannot_start(admin_client, user, captured_dispatches):
    schedule = make_schedule(user, title="stale parameters")
    ReportSchedule.objects.filter(pk=schedule.pk).update(parameters={"count": "many"})

    response = run_action(admin_client, CHANGELIST, "run_schedules_now", schedule)

    (level, text), *_rest = messages_of(response)
    assert level == "warning"
    assert text.startswith("stale parameters could not run: Invalid parameters")
    execution = ScheduleExecution.objects.get()
    assert execution.status == "failed" and execution.report is None
    assert not captured_dispatches


def test_actions_need_the_change_permission(client, user):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_reportschedule"),
    )
    client.force_login(viewer)
    schedule = make_schedule(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert "run_schedules_now" not in response.content.decode()
    run_action(client, CHANGELIST, "disable_schedules", schedule)
    schedule.refresh_from_db()
    assert schedule.enabled is True


# -- execution and webhook delivery admins --------------------------------------------------
def _execution_with_deliveries(user):
    schedule = make_schedule(user, webhook_url="https://93.184.215.14/hook")
    report = ReportFactory(user=user, status="completed", title="Delivered report")
    execution = ScheduleExecution.objects.create(
        schedule=schedule,
        due_at=timezone.now(),
        status="completed",
        report=report,
        webhook_status="sent",
    )
    for attempt, code in ((1, 500), (2, 204)):
        WebhookDelivery.objects.create(
            report=report,
            execution=execution,
            event="report.completed",
            url=schedule.webhook_url,
            message_id="msg_1",
            attempt=attempt,
            status_code=code,
            succeeded=code == 204,
            error="HTTP 500" if code == 500 else "",
            duration_ms=12,
        )
    return schedule, execution


def test_execution_admin_is_read_only_with_webhook_attempts(admin_client, user):
    schedule, execution = _execution_with_deliveries(user)
    make_schedule(user, title="other")
    ScheduleExecution.objects.create(
        schedule=ReportSchedule.objects.get(title="other"), due_at=timezone.now()
    )

    response = admin_client.get(EXECUTIONS, {"schedule__id__exact": str(schedule.pk)})

    assert [e.pk for e in response.context["cl"].result_list] == [execution.pk]
    response = admin_client.get(
        reverse("admin:django_async_reports_scheduleexecution_change", args=[execution.pk])
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Delivered report" in html
    assert "HTTP 500" in html and "report.completed" in html
    assert not response.context["has_change_permission"]
    assert not response.context["has_delete_permission"]
    assert (
        admin_client.get(reverse("admin:django_async_reports_scheduleexecution_add")).status_code
        == 403
    )
    delete = reverse("admin:django_async_reports_scheduleexecution_delete", args=[execution.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ScheduleExecution.objects.filter(pk=execution.pk).exists()


def test_webhook_delivery_admin_is_read_only(admin_client, user):
    _execution_with_deliveries(user)
    adhoc = ReportFactory(user=user, title="Ad-hoc")
    WebhookDelivery.objects.create(
        report=adhoc,
        event="report.failed",
        url="https://93.184.215.14/adhoc",
        message_id="msg_2",
        attempt=1,
        succeeded=False,
        error="timed out",
    )

    response = admin_client.get(DELIVERIES)
    assert response.context["cl"].result_count == 3
    response = admin_client.get(DELIVERIES, {"succeeded__exact": "0"})
    assert response.context["cl"].result_count == 2
    response = admin_client.get(DELIVERIES, {"q": "adhoc"})
    assert [d.report_id for d in response.context["cl"].result_list] == [adhoc.pk]

    delivery = WebhookDelivery.objects.get(report=adhoc)
    response = admin_client.get(
        reverse("admin:django_async_reports_webhookdelivery_change", args=[delivery.pk])
    )
    assert response.status_code == 200
    assert "timed out" in response.content.decode()
    assert not response.context["has_change_permission"]
    assert (
        admin_client.get(reverse("admin:django_async_reports_webhookdelivery_add")).status_code
        == 403
    )


# -- URLField scheme (Django 6.0 assumes https) ------------------------------------------
def test_webhook_url_field_assumes_https_without_a_deprecation_warning(admin_client, user):
    """The form's URLField passes ``assume_scheme``: no RemovedInDjango60Warning on any page.

    Without it the warning fires when ``admin/schedules.py`` is imported, which the
    ``filterwarnings`` of pyproject.toml turns into an error for the whole suite.
    """
    from django_async_reports.admin.schedules import ReportScheduleForm

    assert ReportScheduleForm.base_fields["webhook_url"].assume_scheme == "https"
    schedule = make_schedule(user, webhook_url="https://93.184.215.14/hook")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert admin_client.get(ADD).status_code == 200
        assert admin_client.get(change_url(schedule)).status_code == 200
        response = admin_client.post(
            ADD, form_data(owner=str(user.pk), webhook_url="93.184.215.14/new"), follow=True
        )
    assert response.status_code == 200
    scheme_warnings = [w for w in caught if "assume_scheme" in str(w.message)]
    assert scheme_warnings == []
    # A URL typed without a scheme gets https, as Django 6.0 does by default.
    created = ReportSchedule.objects.exclude(pk=schedule.pk).get()
    assert created.webhook_url == "https://93.184.215.14/new"
