"""The REST API in-process (dispatch captured). End-to-end runs are in tests/e2e."""

import pytest
from django.urls import reverse

from django_async_reports import progress, services
from django_async_reports.models import Report
from tests.conftest import close_streamed_file
from tests.factories import ReportFactory
from tests.helpers import PROGRESS_KEYS, detail

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"


def completed_report(user):
    report = ReportFactory(user=user, parameters={"count": 2, "delay": 0, "text": "x"})
    services.generate(services.claim_report(report.pk))
    services.post_process(report.pk)
    report.refresh_from_db()
    return report


class TestCreate:
    def test_created_with_full_representation(self, auth_client, user, captured_dispatches):
        response = auth_client.post(
            URL,
            {
                "report_type": "sales",
                "title": "Q4 Sales Report",
                "priority": "high",
                "parameters": {"start_date": "2024-10-01", "end_date": "2024-12-31"},
            },
            format="json",
        )
        assert response.status_code == 201, response.data
        body = response.json()
        report = Report.objects.get(pk=body["id"])
        assert report.user == user
        assert body["status"] == "pending" and body["priority"] == "high"
        assert body["title"] == "Q4 Sales Report"
        assert body["parameters"] == {"start_date": "2024-10-01", "end_date": "2024-12-31"}
        assert body["progress"] == 0 and body["download_url"] is None
        assert body["celery_task_id"] == report.celery_task_id
        assert response["Location"].endswith(f"{URL}{report.pk}/")
        for field in (
            "created_at",
            "updated_at",
            "started_at",
            "completed_at",
            "expires_at",
            "result_data",
            "error_message",
            "retry_count",
            "progress_message",
        ):
            assert field in body

    def test_defaults(self, auth_client, captured_dispatches):
        response = auth_client.post(URL, {"report_type": "numbers"}, format="json")
        assert response.status_code == 201
        assert response.json()["priority"] == "normal"
        assert response.json()["title"] == "Numbers"

    @pytest.mark.parametrize(
        ("payload", "errors"),
        [
            ({"report_type": "nope"}, {"report_type"}),
            ({}, {"report_type"}),
            ({"report_type": "numbers", "priority": "asap"}, {"priority"}),
            ({"report_type": "numbers", "parameters": [1, 2]}, {"parameters"}),
            ({"report_type": "numbers", "parameters": "x"}, {"parameters"}),
            ({"report_type": "numbers", "title": "t" * 300}, {"title"}),
            ({"report_type": "numbers", "parameters": {"count": "many"}}, {"parameters"}),
        ],
    )
    def test_bad_input_is_400_with_field_errors(
        self, auth_client, payload, errors, captured_dispatches
    ):
        response = auth_client.post(URL, payload, format="json")
        assert response.status_code == 400
        assert set(response.json()) == errors
        assert not Report.objects.exists()

    def test_generator_errors_are_nested_under_parameters(self, auth_client, captured_dispatches):
        response = auth_client.post(
            URL,
            {
                "report_type": "sales",
                "parameters": {"start_date": "2024-12-31", "end_date": "2024-01-01"},
            },
            format="json",
        )
        assert response.status_code == 400
        assert response.json() == {"parameters": {"end_date": ["Must not be before start_date."]}}
        response = auth_client.post(URL, {"report_type": "sales", "parameters": {}}, format="json")
        assert set(response.json()["parameters"]) == {"start_date", "end_date"}

    def test_unknown_type_message_lists_known_types(self, auth_client):
        response = auth_client.post(URL, {"report_type": "nope"}, format="json")
        assert "sales" in response.json()["report_type"][0]

    def test_malformed_json(self, auth_client):
        response = auth_client.generic("POST", URL, "{not json", content_type="application/json")
        assert response.status_code == 400
        assert "JSON parse error" in response.json()["detail"]
        assert not Report.objects.exists()

    def test_oversized_parameters(self, auth_client):
        response = auth_client.post(
            URL, {"report_type": "numbers", "parameters": {"text": "x" * 20000}}, format="json"
        )
        assert response.status_code == 400
        assert "parameters" in response.json()

    def test_anonymous_is_401(self, api_client):
        assert api_client.post(URL, {"report_type": "numbers"}, format="json").status_code == 401
        assert api_client.get(URL).status_code == 401


class TestList:
    def test_only_own_reports_filters_and_ordering(self, auth_client, user, other_user):
        ReportFactory(user=user, status="completed", report_type="numbers", title="b")
        ReportFactory(user=user, status="failed", report_type="sales", title="a")
        ReportFactory(user=other_user, status="completed")
        body = auth_client.get(URL).json()
        assert body["count"] == 2
        assert [r["title"] for r in body["results"]] == ["a", "b"]  # newest first
        assert [
            r["title"] for r in auth_client.get(URL + "?status=completed").json()["results"]
        ] == ["b"]
        assert [
            r["title"] for r in auth_client.get(URL + "?report_type=sales").json()["results"]
        ] == ["a"]
        assert [r["title"] for r in auth_client.get(URL + "?ordering=title").json()["results"]] == [
            "a",
            "b",
        ]

    def test_pagination(self, auth_client, user):
        ReportFactory.create_batch(25, user=user)
        first = auth_client.get(URL).json()
        assert first["count"] == 25 and len(first["results"]) == 20 and first["next"]
        assert len(auth_client.get(URL + "?page=2").json()["results"]) == 5
        assert len(auth_client.get(URL + "?page_size=5").json()["results"]) == 5

    def test_bad_filter_value_is_400(self, auth_client):
        response = auth_client.get(URL + "?status=exploded")
        assert response.status_code == 400
        assert "status" in response.json()

    def test_recent(self, auth_client, user, other_user):
        ReportFactory.create_batch(12, user=user)
        ReportFactory(user=other_user)
        body = auth_client.get(URL + "recent/").json()
        assert len(body) == 10
        assert all(Report.objects.get(pk=r["id"]).user == user for r in body)

    def test_types(self, auth_client):
        body = auth_client.get(URL + "types/").json()
        sales = next(t for t in body if t["report_type"] == "sales")
        assert sales["label"] == "Sales report"
        assert sales["columns"] == ["sale_id", "date", "customer", "amount"]
        assert sales["parameters"]["start_date"] == {"type": "date", "required": True}
        numbers = next(t for t in body if t["report_type"] == "numbers")
        assert numbers["parameters"]["count"]["default"] == 10


class TestDetailActions:
    def test_detail_and_ownership(self, auth_client, other_client, user):
        report = ReportFactory(user=user)
        assert auth_client.get(detail(report)).json()["id"] == str(report.pk)
        for action in ("", "progress", "download"):
            assert other_client.get(detail(report, action)).status_code == 404
        for action in ("cancel", "regenerate"):
            assert other_client.post(detail(report, action)).status_code == 404
        report.refresh_from_db()
        assert report.status == "pending"
        assert Report.objects.count() == 1

    def test_anonymous_detail_is_401(self, api_client, user):
        report = ReportFactory(user=user)
        assert api_client.get(detail(report)).status_code == 401
        assert api_client.post(detail(report, "cancel")).status_code == 401

    def test_not_a_uuid_is_a_json_404(self, auth_client):
        response = auth_client.get(URL + "123/")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"

    def test_progress_prefers_cache_while_running(self, auth_client, user):
        report = ReportFactory(user=user, status="processing", progress=10, progress_message="row")
        progress.write_cache(
            report.pk,
            status="processing",
            progress=42,
            message="Processed 42",
            rows=42,
            total=100,
            rows_per_second=21.0,
            eta_seconds=3,
        )
        body = auth_client.get(detail(report, "progress")).json()
        assert body["status"] == "processing"
        assert body["progress"] == 42 and body["message"] == "Processed 42"
        assert set(body) == PROGRESS_KEYS
        assert (body["rows"], body["total"], body["rows_per_second"], body["eta_seconds"]) == (
            42,
            100,
            21.0,
            3,
        )

    def test_progress_falls_back_to_row(self, auth_client, user):
        report = ReportFactory(user=user, status="processing", progress=10, progress_message="row")
        body = auth_client.get(detail(report, "progress")).json()
        assert (body["progress"], body["message"]) == (10, "row")

    def test_progress_of_finished_report_comes_from_the_row(self, auth_client, user):
        report = ReportFactory(user=user, status="cancelled", progress=30)
        progress.write_cache(report.pk, status="processing", progress=80)
        body = auth_client.get(detail(report, "progress")).json()
        assert (body["status"], body["progress"]) == ("cancelled", 30)

    def test_download(self, auth_client, user):
        report = completed_report(user)
        response = auth_client.get(detail(report, "download"))
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith("attachment; filename=")
        assert response["Content-Disposition"].endswith('.csv"')
        assert b"".join(response.streaming_content).decode().splitlines() == [
            "n,square,text",
            "1,1,x",
            "2,4,x",
        ]
        close_streamed_file(response)
        body = auth_client.get(detail(report)).json()
        assert body["download_url"].endswith(detail(report, "download"))

    def test_download_before_completion_is_404(self, auth_client, user):
        report = ReportFactory(user=user, status="processing")
        response = auth_client.get(detail(report, "download"))
        assert response.status_code == 404
        assert "not ready" in response.json()["detail"]

    def test_download_of_vanished_file_is_404(self, auth_client, user):
        report = completed_report(user)
        report.result_file.storage.delete(report.result_file.name)
        assert auth_client.get(detail(report, "download")).status_code == 404

    def test_cancel(self, auth_client, user):
        report = ReportFactory(user=user)
        response = auth_client.post(detail(report, "cancel"))
        assert response.status_code == 200
        assert response.json() == {"message": "Report cancelled.", "status": "cancelled"}
        report.refresh_from_db()
        assert report.status == "cancelled"

    def test_cancel_finished_is_409(self, auth_client, user):
        report = ReportFactory(user=user, status="completed")
        response = auth_client.post(detail(report, "cancel"))
        assert response.status_code == 409
        assert "already completed" in response.json()["message"]

    def test_regenerate(self, auth_client, user, captured_dispatches):
        report = ReportFactory(user=user, status="failed", priority="high")
        response = auth_client.post(detail(report, "regenerate"))
        assert response.status_code == 201
        body = response.json()
        assert body["id"] != str(report.pk)
        assert (body["report_type"], body["parameters"], body["priority"], body["status"]) == (
            report.report_type,
            report.parameters,
            "high",
            "pending",
        )

    def test_regenerate_of_removed_type_is_400(self, auth_client, user):
        report = ReportFactory(user=user, report_type="retired")
        response = auth_client.post(detail(report, "regenerate"))
        assert response.status_code == 400
        assert "report_type" in response.json()

    def test_get_on_post_action_is_405(self, auth_client, user):
        assert auth_client.get(detail(ReportFactory(user=user), "cancel")).status_code == 405

    def test_no_update_or_delete(self, auth_client, user):
        report = ReportFactory(user=user)
        assert auth_client.delete(detail(report)).status_code == 405
        assert auth_client.patch(detail(report), {"title": "x"}, format="json").status_code == 405


def test_url_names():
    assert reverse("django_async_reports:report-list") == URL
    assert reverse("django_async_reports:report-types") == URL + "types/"


class TestAdHocWebhook:
    def test_webhook_url_is_accepted_and_signed_with_the_users_secret(
        self, auth_client, user, captured_dispatches, settings
    ):
        from django_async_reports.delivery import webhook_secret_for_user

        settings.ASYNC_REPORTS = {
            **settings.ASYNC_REPORTS,
            "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "WEBHOOK_ALLOWED_PORTS": None,  # loopback receivers on random ports
        }
        response = auth_client.post(
            URL,
            {"report_type": "numbers", "webhook_url": "http://127.0.0.1:9/hook"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["webhook_url"] == "http://127.0.0.1:9/hook"
        assert body["webhook_secret"] == webhook_secret_for_user(user)
        assert body["webhook_secret"].startswith("whsec_")
        report = Report.objects.get(pk=body["id"])
        new = services.regenerate_report(report)
        assert new.webhook_url == report.webhook_url

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "http://169.254.169.254/latest",
            "ftp://example.com/x",
            "http://user:pw@example.com/",
            "not a url",
        ],
    )
    def test_unsafe_webhook_targets_are_400(self, auth_client, url):
        response = auth_client.post(
            URL, {"report_type": "numbers", "webhook_url": url}, format="json"
        )
        assert response.status_code == 400
        assert "webhook_url" in response.json()
        assert not Report.objects.exists()

    def test_no_webhook_no_secret(self, auth_client, captured_dispatches):
        body = auth_client.post(URL, {"report_type": "numbers"}, format="json").json()
        assert body["webhook_url"] == "" and body["webhook_secret"] is None
