"""docs/how-to/s3.md: its settings block, against a real S3 server (moto) on loopback.

The page's module is imported with the environment it reads (bucket, region,
and credentials through boto3's own ``AWS_*`` variables, as an IAM-less host
would set them); the test adds only the endpoint of the moto server.
"""

from __future__ import annotations

import importlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from django_async_reports import health
from django_async_reports.checks import check_settings
from django_async_reports.models import Report
from django_async_reports.services import s3_stream
from django_async_reports.storage import report_storage
from tests.factories import ReportFactory
from tests.helpers import detail, run_report
from tests.s3_server import S3_CREDENTIALS, S3_REGION, list_keys, s3_client

pytestmark = pytest.mark.django_db

MODULE = "docs_src.how_to.s3.settings"


@pytest.fixture
def page_settings(settings, monkeypatch, s3_endpoint, s3_bucket):
    """The page's STORAGES["reports"] and ASYNC_REPORTS, pointed at the moto bucket."""
    monkeypatch.setenv("REPORTS_BUCKET", s3_bucket)
    monkeypatch.setenv("REPORTS_BUCKET_REGION", S3_REGION)
    # No keys in OPTIONS: boto3 reads these, as it would an IAM role's.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_CREDENTIALS["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_CREDENTIALS["secret_key"])
    page = importlib.reload(importlib.import_module(MODULE))
    reports = page.STORAGES["reports"]
    assert "access_key" not in reports["OPTIONS"] and "secret_key" not in reports["OPTIONS"]
    options = {**reports["OPTIONS"], "endpoint_url": s3_endpoint, "addressing_style": "path"}
    settings.STORAGES = {**settings.STORAGES, "reports": {**reports, "OPTIONS": options}}
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, **page.ASYNC_REPORTS}
    return page


def completed_csv_report(user) -> Report:
    report = ReportFactory(user=user, title="Q4 Sales", parameters={"count": 3, "delay": 0.0})
    report = run_report(report, notify=False)
    assert report.status == Report.Status.COMPLETED, report.error_message
    return report


def test_the_settings_pass_the_system_checks(page_settings):
    ids = [message.id for message in check_settings()]
    assert "django_async_reports.E008" not in ids  # the alias exists
    assert "django_async_reports.W003" not in ids  # ContentType is set
    assert s3_stream.streams(report_storage, "csv")  # CSV is uploaded as it is written


def test_a_report_lands_encrypted_in_the_bucket_and_downloads_by_redirect(
    page_settings, s3_endpoint, s3_bucket, user, auth_client
):
    report = completed_csv_report(user)

    key = report.result_file.name
    assert key.startswith(f"reports/{user.pk}/{report.pk}/") and key.endswith("/q4-sales.csv")
    assert list_keys(s3_endpoint, s3_bucket) == [key]
    head = s3_client(s3_endpoint).head_object(Bucket=s3_bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/octet-stream"

    response = auth_client.get(detail(report, "download"))

    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = response["Location"]
    parts = urlsplit(location)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == f"/{s3_bucket}/{key}"
    assert query["X-Amz-Expires"] == "300"  # DOWNLOAD_URL_EXPIRES
    assert query["response-content-disposition"] == 'attachment; filename="q4-sales.csv"'
    assert requests.get(location.split("?", 1)[0], timeout=10).status_code == 403  # private
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content.splitlines()[:2] == [b"n,square,text", b"1,1,"]


def test_the_pages_storage_check_writes_to_the_bucket(
    page_settings, s3_endpoint, s3_bucket, capsys
):
    from docs_src.how_to.s3.check_storage import check_report_storage

    answer = check_report_storage()

    assert answer["checks"]["storage"]["ok"] is True, answer
    assert answer["status"] == "ok"
    assert "'ok': True" in capsys.readouterr().out
    assert list_keys(s3_endpoint, s3_bucket) == []  # its probe file deleted again


def test_a_storage_the_credentials_cannot_write_fails_the_check(page_settings, settings):
    settings.STORAGES["reports"]["OPTIONS"]["bucket_name"] = "no-such-bucket-for-howto"
    settings.STORAGES = {**settings.STORAGES}  # reload the report storage

    answer = health.run_checks({"storage": health.check_storage})

    assert answer["checks"]["storage"]["ok"] is False
    assert answer["status"] == "degraded"
