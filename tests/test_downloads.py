"""Downloads: a redirect to a presigned S3 URL, or the file streamed through Django.

S3 is a real moto server on loopback (tests/s3_server.py). The first half calls
``downloads.download_response`` directly; the second half goes through the API's
download route and the admin's download view.
"""

from __future__ import annotations

import gzip
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.http import Http404
from django.urls import reverse
from rest_framework.test import APIRequestFactory

from django_async_reports import downloads
from django_async_reports.exceptions import ReportConfigurationError
from django_async_reports.models import Report
from django_async_reports.storage import report_file_name, report_storage
from tests.conftest import close_streamed_file
from tests.factories import ReportFactory
from tests.helpers import set_reports
from tests.s3_server import (
    list_keys,
    use_s3,
)

pytestmark = pytest.mark.django_db

CSV = b"n,square,text\r\n1,1,x\r\n2,4,x\r\n"
CSV_TYPE = "text/csv; charset=utf-8"


def completed_report(user, content=CSV, *, compressed=False, title="Q4 Sales"):
    """A completed report whose file was saved, by its server-made key, to the report storage."""
    result_data = {"format": "csv", "row_count": 2}
    if compressed:
        result_data["compressed"] = True
    report = ReportFactory(
        user=user,
        title=title,
        status=Report.Status.COMPLETED,
        progress=100,
        result_data=result_data,
    )
    extension = "csv.gz" if compressed else "csv"
    key = report_file_name(user.pk, report.pk, title, extension)
    stored = report_storage.save(key, ContentFile(content))
    assert stored == key
    Report.objects.filter(pk=report.pk).update(result_file=stored)
    report.refresh_from_db()
    return report


def get_request():
    return APIRequestFactory().get("/api/v1/reports/x/download/")


def presigned_query(location):
    parts = urlsplit(location)
    return parts, {name: values[0] for name, values in parse_qs(parts.query).items()}


def assert_presigned(location, endpoint, bucket, report, *, expires="300", content_type=CSV_TYPE):
    parts, query = presigned_query(location)
    assert f"{parts.scheme}://{parts.netloc}" == endpoint
    assert parts.path == f"/{bucket}/{report.result_file.name}"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == expires
    assert query["X-Amz-Credential"].startswith("testing/")
    assert len(query["X-Amz-Signature"]) == 64
    basename = report.result_file.name.rsplit("/", 1)[-1]
    assert query["response-content-disposition"] == f'attachment; filename="{basename}"'
    assert query["response-content-type"] == content_type


# -- download_response: S3 ---------------------------------------------------------------
def test_s3_download_redirects_to_a_presigned_url_that_serves_the_file(
    s3_endpoint, s3_reports, user
):
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = response["Location"]
    assert_presigned(location, s3_endpoint, s3_reports, report)
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == CSV
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="q4-sales.csv"'
    assert fetched.headers["Content-Type"] == CSV_TYPE


def test_url_lifetime_follows_download_url_expires(settings, s3_endpoint, s3_reports, user):
    set_reports(settings, DOWNLOAD_URL_EXPIRES=60)
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert_presigned(response["Location"], s3_endpoint, s3_reports, report, expires="60")


def test_download_url_takes_an_explicit_lifetime(s3_reports, user):
    report = completed_report(user)
    first = downloads.download_response(report, get_request())["Location"]
    other = downloads.storage_url(report, expires=120)

    assert presigned_query(first)[1]["X-Amz-Expires"] == "300"
    assert presigned_query(other)[1]["X-Amz-Expires"] == "120"
    assert first.split("?")[0] == other.split("?")[0]


def test_compressed_s3_download_is_served_as_gzip(s3_endpoint, s3_reports, user):
    payload = gzip.compress(CSV, mtime=0)
    report = completed_report(user, payload, compressed=True)
    assert report.result_file.name.endswith("/q4-sales.csv.gz")

    response = downloads.download_response(report, get_request())

    assert response.status_code == 302
    assert_presigned(
        response["Location"], s3_endpoint, s3_reports, report, content_type="application/gzip"
    )
    fetched = requests.get(response["Location"], timeout=10, stream=True)
    raw = fetched.raw.read()  # the bytes on the wire, before any client-side decoding
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "application/gzip"
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="q4-sales.csv.gz"'
    assert "Content-Encoding" not in fetched.headers
    assert raw == payload
    assert gzip.decompress(raw) == CSV


def test_missing_s3_object_is_404(s3_endpoint, s3_reports, user):
    report = completed_report(user)
    report_storage.delete(report.result_file.name)
    assert list_keys(s3_endpoint, s3_reports) == []

    with pytest.raises(Http404):
        downloads.download_response(report, get_request())


def test_report_without_file_is_404(s3_reports, user):
    report = ReportFactory(user=user, status=Report.Status.COMPLETED)

    with pytest.raises(Http404):
        downloads.download_response(report, get_request())


def test_s3_with_redirect_off_streams_through_django(settings, s3_reports, user):
    set_reports(settings, DOWNLOAD_REDIRECT=False)
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert response.status_code == 200
    assert response["Content-Type"] == CSV_TYPE
    assert response["Content-Disposition"] == 'attachment; filename="q4-sales.csv"'
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == CSV
    close_streamed_file(response)


def test_s3_without_querystring_auth_streams_when_redirect_is_automatic(
    settings, s3_endpoint, s3_bucket, user
):
    # Its url() would be a plain, unsigned URL of a private object: useless and
    # permanent. Streaming is the only way it can be served.
    use_s3(settings, s3_endpoint, s3_bucket, querystring_auth=False)
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CSV
    close_streamed_file(response)


# -- download_response: file system and other storages ---------------------------------------
def test_file_system_download_is_streamed(user):
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert response.status_code == 200
    assert response["Content-Type"] == CSV_TYPE
    assert response["Content-Disposition"] == 'attachment; filename="q4-sales.csv"'
    assert response["Content-Length"] == str(len(CSV))
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == CSV
    close_streamed_file(response)


def test_compressed_file_system_download_is_gzip(user):
    payload = gzip.compress(CSV, mtime=0)
    report = completed_report(user, payload, compressed=True)

    response = downloads.download_response(report, get_request())

    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == 'attachment; filename="q4-sales.csv.gz"'
    assert not response.has_header("Content-Encoding")
    assert b"".join(response.streaming_content) == payload
    close_streamed_file(response)


def test_missing_file_on_disk_is_404(user):
    report = completed_report(user)
    report_storage.delete(report.result_file.name)

    with pytest.raises(Http404):
        downloads.download_response(report, get_request())


def test_file_system_with_redirect_on_redirects_to_storage_url(settings, user):
    settings.MEDIA_URL = "/media/"
    set_reports(settings, DOWNLOAD_REDIRECT=True)
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert response.status_code == 302
    assert response["Location"] == f"http://testserver/media/{report.result_file.name}"
    assert response["Cache-Control"] == "no-store"

    report_storage.delete(report.result_file.name)
    with pytest.raises(Http404):
        downloads.download_response(report, get_request())


class ExpiringURLStorage(Storage):
    """A remote-looking storage (no ``path()``) with an Azure-style ``url(name, expire=None)``.

    The bytes live on disk under ``location``, through a FileSystemStorage it wraps.
    """

    def __init__(self, location):
        self.files = FileSystemStorage(location=location)

    def _open(self, name, mode="rb"):
        return self.files._open(name, mode)

    def _save(self, name, content):
        return self.files._save(name, content)

    def exists(self, name):
        return self.files.exists(name)

    def delete(self, name):
        self.files.delete(name)

    def size(self, name):
        return self.files.size(name)

    def url(self, name, expire=None):
        return f"https://files.example.com/{name}?expires={expire}"


class NoURLStorage(ExpiringURLStorage):
    """Remote-looking, without any url()."""

    def url(self, name):
        raise NotImplementedError("no URLs")


def use_custom(settings, backend):
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": {"BACKEND": backend, "OPTIONS": {"location": settings.MEDIA_ROOT}},
    }
    set_reports(settings, STORAGE="reports")


def test_remote_storage_url_gets_the_configured_lifetime(settings, user):
    use_custom(settings, "tests.test_downloads.ExpiringURLStorage")
    set_reports(settings, DOWNLOAD_URL_EXPIRES=45)
    report = completed_report(user)

    response = downloads.download_response(report, get_request())

    assert response.status_code == 302
    assert response["Location"] == (
        f"https://files.example.com/{report.result_file.name}?expires=45"
    )
    assert response["Cache-Control"] == "no-store"


def test_remote_storage_without_url_is_streamed_or_misconfigured(settings, user):
    use_custom(settings, "tests.test_downloads.NoURLStorage")
    report = completed_report(user)

    response = downloads.download_response(report, get_request())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CSV
    close_streamed_file(response)

    set_reports(settings, DOWNLOAD_REDIRECT=True)
    with pytest.raises(ReportConfigurationError, match="DOWNLOAD_REDIRECT"):
        downloads.download_response(report, get_request())


@pytest.mark.parametrize(
    ("result_data", "name", "expected"),
    [
        ({"format": "csv"}, "reports/1/x/a.csv", CSV_TYPE),
        ({"format": "csv", "compressed": True}, "reports/1/x/a.csv.gz", "application/gzip"),
        ({}, "reports/1/x/a.csv", CSV_TYPE),
        ({"format": "no-such-format"}, "reports/1/x/a.bin", "application/octet-stream"),
        ({}, "reports/1/x/a.bin", "application/octet-stream"),
    ],
)
def test_download_content_type(result_data, name, expected):
    report = Report(result_data=result_data, result_file=name)
    assert downloads.download_content_type(report) == expected


# -- API route -----------------------------------------------------------------------------
def api_download(report):
    return reverse("django_async_reports:report-download", kwargs={"pk": report.pk})


def test_api_download_from_s3_redirects_the_owner(auth_client, s3_endpoint, s3_reports, user):
    report = completed_report(user)
    assert api_download(report) == f"/api/v1/reports/{report.pk}/download/"

    response = auth_client.get(api_download(report))

    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    assert_presigned(response["Location"], s3_endpoint, s3_reports, report)
    fetched = requests.get(response["Location"], timeout=10)
    assert (fetched.status_code, fetched.content) == (200, CSV)
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="q4-sales.csv"'


def test_api_download_of_compressed_report_from_s3(auth_client, s3_endpoint, s3_reports, user):
    payload = gzip.compress(CSV, mtime=0)
    report = completed_report(user, payload, compressed=True)

    response = auth_client.get(api_download(report))

    assert response.status_code == 302
    assert_presigned(
        response["Location"], s3_endpoint, s3_reports, report, content_type="application/gzip"
    )
    fetched = requests.get(response["Location"], timeout=10, stream=True)
    assert fetched.headers["Content-Type"] == "application/gzip"
    assert fetched.raw.read() == payload


def test_api_download_from_s3_is_404_for_another_user(other_client, s3_reports, user):
    report = completed_report(user)

    response = other_client.get(api_download(report))

    assert response.status_code == 404
    assert "Location" not in response
    assert "X-Amz-Signature" not in response.content.decode()


def test_api_download_from_s3_is_401_for_anonymous(api_client, s3_reports, user):
    report = completed_report(user)

    response = api_client.get(api_download(report))

    assert response.status_code == 401
    assert "Location" not in response


def test_api_download_of_missing_s3_object_is_404(auth_client, s3_reports, user):
    report = completed_report(user)
    report_storage.delete(report.result_file.name)

    assert auth_client.get(api_download(report)).status_code == 404


def test_api_download_from_s3_streams_when_redirect_is_off(settings, auth_client, s3_reports, user):
    set_reports(settings, DOWNLOAD_REDIRECT=False)
    report = completed_report(user)

    response = auth_client.get(api_download(report))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="q4-sales.csv"'
    assert b"".join(response.streaming_content) == CSV
    close_streamed_file(response)


def test_api_download_from_file_system_streams(auth_client, user):
    report = completed_report(user)

    response = auth_client.get(api_download(report))

    assert response.status_code == 200
    assert response["Content-Type"] == CSV_TYPE
    assert b"".join(response.streaming_content) == CSV
    close_streamed_file(response)


# -- admin download view ----------------------------------------------------------------------
def test_admin_download_from_s3_redirects_staff(admin_client, s3_endpoint, s3_reports, other_user):
    report = completed_report(other_user)

    response = admin_client.get(
        reverse("admin:django_async_reports_report_download", args=[report.pk])
    )

    assert response.status_code == 302
    # admin_view() adds never_cache's directives to ours.
    assert "no-store" in response["Cache-Control"].split(", ")
    assert_presigned(response["Location"], s3_endpoint, s3_reports, report)
    assert requests.get(response["Location"], timeout=10).content == CSV
