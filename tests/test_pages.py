"""The "My reports" page, rendered by Django's test client (the browser tests are in
tests/e2e/test_pages_e2e.py)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.template.loader import get_template
from django.urls import reverse
from rest_framework import serializers

from django_async_reports import ReportGenerator
from django_async_reports.models import ScheduleExecution
from django_async_reports.pages.form_fields import form_fields
from django_async_reports.pages.views import timing_text
from tests.factories import UserFactory
from tests.helpers import make_schedule

pytestmark = pytest.mark.django_db

PAGE = "/reports/"


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="ar-page-config" type="application/json">')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_anonymous_visitors_go_to_the_hosts_login_page(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == "/api-auth/login/?next=/reports/"


def test_the_page_offers_a_form_per_type_the_user_may_run(client):
    client.force_login(UserFactory(username="carol"))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    # sales: two required date pickers, with labels tied to them and a slot for the server's error.
    assert '<label for="ar-p-sales-start_date">Start date</label>' in html
    assert 'id="ar-p-sales-start_date" name="start_date" type="date" required' in html
    assert 'data-ar-error-for="parameters.start_date"' in html
    # numbers: an integer input with the serializer's bounds and default.
    count = 'id="ar-p-numbers-count" name="count" type="number" value="10"'
    assert count + ' min="0" max="5000000" step="1"' in html
    # Staff-only types are left out for a user who may not run them.
    assert 'data-ar-parameters="staff_only"' not in html
    config = page_config(response)
    assert config["reportsUrl"] == reverse("django_async_reports:report-list")
    assert config["types"]["numbers"]["formats"][0] == "csv"
    assert "staff_only" not in config["types"]
    assert config["statusLabels"]["processing"] == "Processing"
    assert config["pollSeconds"] == 1.0
    # Only the first type's fieldset is shown and enabled; the others are hidden and disabled.
    first, *others = [chunk for chunk in html.split('<fieldset class="ar-parameters"')[1:]]
    assert " hidden disabled" not in first.split(">", 1)[0]
    assert all(" hidden disabled" in other.split(">", 1)[0] for other in others)


def test_the_page_lists_my_schedules_with_their_last_run_and_not_others(client):
    me, other = UserFactory(username="dave"), UserFactory(username="erin")
    mine = make_schedule(me, title="Weekly numbers", frequency="weekly", weekday=2)
    make_schedule(other, title="Erin's numbers")
    ScheduleExecution.objects.create(
        schedule=mine,
        due_at=datetime.datetime(2026, 11, 25, 8, tzinfo=datetime.timezone.utc),
        status=ScheduleExecution.Status.FAILED,
        error="The report failed: no data.",
    )
    client.force_login(me)
    html = client.get(PAGE).content.decode()
    assert "Weekly numbers" in html
    assert "Weekly on Wednesday at 08:00 (UTC)" in html
    assert "The report failed: no data." in html
    assert "ar-status--failed" in html
    assert "Erin&#x27;s numbers" not in html and "Erin's numbers" not in html


def test_timing_text_names_each_frequency():
    owner = UserFactory()
    assert timing_text(make_schedule(owner)) == "Daily at 08:00 (UTC)"
    monthly = make_schedule(owner, frequency="monthly", day_of_month=31, timezone="Europe/Paris")
    assert timing_text(monthly) == "Monthly on day 31 at 08:00 (Europe/Paris)"
    custom = make_schedule(owner, frequency="custom", cron_expression="0 6 * * 1-5")
    assert timing_text(custom) == "Cron 0 6 * * 1-5 (UTC)"


class EveryKindParameters(serializers.Serializer):
    day = serializers.DateField()
    moment = serializers.DateTimeField(required=False)
    region = serializers.ChoiceField(choices=[("n", "North"), ("s", "South")], required=False)
    regions = serializers.MultipleChoiceField(choices=[("n", "North"), ("s", "South")])
    top = serializers.IntegerField(min_value=1, max_value=50, default=10)
    ratio = serializers.FloatField(required=False)
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=Decimal("0"))
    flag = serializers.BooleanField(default=True, label="Only open ones")
    email = serializers.EmailField(required=False, max_length=80)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    note = serializers.CharField(required=False, help_text="Shown in the header.")
    created = serializers.DateTimeField(read_only=True)


class EveryKindReport(ReportGenerator):
    report_type = "every_kind"
    parameters_class = EveryKindParameters
    columns = ["a"]

    def rows(self, params):
        return []


def test_each_drf_field_becomes_the_input_that_fits_it():
    fields = {f.name: f for f in form_fields(EveryKindReport)}
    assert "created" not in fields  # read-only fields are not asked for
    widgets = {name: (f.widget, f.kind) for name, f in fields.items()}
    assert widgets == {
        "day": ("date", "string"),
        "moment": ("datetime", "string"),
        "region": ("select", "string"),
        "regions": ("checkboxes", "list"),
        "top": ("number", "integer"),
        "ratio": ("number", "number"),
        "amount": ("number", "number"),
        "flag": ("checkbox", "boolean"),
        "email": ("email", "string"),
        "tags": ("textarea", "json"),
        "note": ("text", "string"),
    }
    assert fields["region"].choices == [("n", "North"), ("s", "South")]
    assert fields["top"].attrs == {"min": 1, "max": 50, "step": 1}
    assert fields["top"].initial == 10
    assert fields["amount"].attrs == {"min": Decimal("0"), "step": "0.01"}
    assert fields["ratio"].attrs == {"step": "any"}
    assert fields["email"].attrs == {"maxlength": 80}
    assert fields["flag"].label == "Only open ones" and fields["flag"].initial is True
    assert fields["day"].required and not fields["moment"].required
    assert fields["note"].help_text == "Shown in the header."


def test_a_type_without_parameters_class_has_no_inputs():
    class Free(ReportGenerator):
        report_type = "free"
        columns = ["a"]

        def rows(self, params):
            return []

    assert form_fields(Free) == []


def test_every_part_of_the_page_can_be_overridden(settings, tmp_path, client):
    """A project template of the same name wins over the package's, as for any app."""
    override = tmp_path / "django_async_reports" / "pages"
    override.mkdir(parents=True)
    (override / "_schedules.html").write_text("<p>Our own schedules block</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    for name in ("base", "my_reports", "_request_form", "_field", "_report_card", "_schedules"):
        assert get_template(f"django_async_reports/pages/{name}.html")
    client.force_login(UserFactory())
    html = client.get(PAGE).content.decode()
    assert "<p>Our own schedules block</p>" in html
    assert 'id="ar-report-template"' in html


def test_w050_when_the_api_would_refuse_the_pages_session(settings):
    from django.core.checks import run_checks

    def w050():
        return [m for m in run_checks() if m.id == "django_async_reports.W050"]

    assert w050() == []  # tests/settings.py lists SessionAuthentication
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "AUTHENTICATION_CLASSES": ["tests.testapp.authentication.BearerTokenAuthentication"],
    }
    assert [m.hint for m in w050()] == [
        'Add "rest_framework.authentication.SessionAuthentication" to REST_FRAMEWORK['
        '"DEFAULT_AUTHENTICATION_CLASSES"] (or to ASYNC_REPORTS["AUTHENTICATION_CLASSES"] '
        "when you set it)."
    ]
    settings.ROOT_URLCONF = "tests.urls_without_page"
    assert w050() == []
