"""Presigned download links in e-mails of files too large to attach (EMAIL_LINK_EXPIRES).

Real services only: reports are generated into a private bucket of a moto S3
server on loopback (tests/s3_server.py), mailed through Django's SMTP backend to
an aiosmtpd server on loopback, and the link found in the received message is
fetched with ``requests``.
"""

from __future__ import annotations

import datetime
import hashlib
import html
import logging
import re
import zoneinfo
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import override_settings
from django.utils import dateformat

from django_async_reports import delivery, downloads
from django_async_reports.checks import check_settings
from django_async_reports.conf import report_settings
from django_async_reports.models import Report
from tests.helpers import (
    RECIPIENTS,
    csv_rows,
    expected_rows,
    numbers_report,
    scheduled_report,
    set_reports,
)
from tests.loopback_servers import attachments
from tests.loopback_servers import text_body as crlf_text_body
from tests.s3_server import (
    s3_client,
    use_s3,
)

pytestmark = pytest.mark.django_db

LINK_LABEL = re.compile(
    r"^Download link, valid until (?P<until>.+) "
    r"\(anyone with this link can download the file\):\n(?P<url>\S+)$",
    re.MULTILINE,
)
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC = datetime.timezone.utc


# -- reports ---------------------------------------------------------------------------
def stored_bytes(endpoint, bucket, report) -> bytes:
    obj = s3_client(endpoint).get_object(Bucket=bucket, Key=report.result_file.name)
    return obj["Body"].read()


def query(url):
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def signed_at(url) -> datetime.datetime:
    return datetime.datetime.strptime(query(url)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC
    )


def shown(instant, tz) -> str:
    return dateformat.format(instant.astimezone(tz), "Y-m-d H:i T")


def possible_expiries(url, lifetime, tz) -> set[str]:
    """How the mail may show the expiry: computed just before signing, to the minute."""
    end = signed_at(url) + datetime.timedelta(seconds=lifetime)
    return {shown(end + datetime.timedelta(seconds=delta), tz) for delta in (-1, 0, 1)}


def text_body(message) -> str:
    """The plain-text body with the CRLF line ends of the wire turned into \\n."""
    return crlf_text_body(message).replace("\r\n", "\n")


def link_in(body):
    match = LINK_LABEL.search(body)
    assert match is not None, body
    return match["url"], match["until"]


# -- large files on S3: a presigned link ------------------------------------------------------
class TestPresignedLink:
    def test_recipients_get_a_link_that_serves_the_exact_file(
        self, smtp, owner, settings, s3_endpoint, s3_reports, caplog
    ):
        caplog.set_level(logging.DEBUG, logger="django_async_reports")
        set_reports(
            settings,
            EMAIL_ATTACHMENT_MAX_BYTES=10,
            EMAIL_LINK_EXPIRES=3600,
            BASE_URL="https://reports.example.com",
        )
        _schedule, report, execution = scheduled_report(owner)
        size = report.result_data["file_size"]
        assert size > 10

        delivery.deliver(report)

        [received] = smtp.received
        assert sorted(received.rcpt_tos) == sorted(RECIPIENTS)
        assert attachments(received.message) == []
        body = text_body(received.message)
        url, until = link_in(body)
        # On the moto endpoint, the report's own key, SigV4 for exactly an hour.
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == s3_endpoint
        assert parts.path == f"/{s3_reports}/{report.result_file.name}"
        params = query(url)
        assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert params["X-Amz-Expires"] == "3600"
        assert len(params["X-Amz-Signature"]) == 64
        filename = report.result_file.name.rsplit("/", 1)[-1]
        assert filename == "weekly-numbers.csv"
        assert params["response-content-disposition"] == f'attachment; filename="{filename}"'
        # Shown in the schedule's time zone, to the minute.
        assert until in possible_expiries(url, 3600, PARIS)
        assert until.endswith((" CET", " CEST"))
        # The rest of the mail as before: why nothing is attached, and the API link.
        assert f"The file ({size}\xa0bytes) is too large to attach.\n" in body
        assert (
            f"\nDownload it (sign-in required): "
            f"https://reports.example.com/api/v1/reports/{report.pk}/download/\n" in body
        )
        assert body.index("Download link, valid until") < body.index("Download it (sign-in")

        fetched = requests.get(url, timeout=10)  # no credentials: the URL is the credential
        assert fetched.status_code == 200
        assert fetched.content == stored_bytes(s3_endpoint, s3_reports, report)
        checksum = f"sha256:{hashlib.sha256(fetched.content).hexdigest()}"
        assert checksum == report.result_data["checksum"]
        assert csv_rows(fetched.content) == expected_rows(3)
        assert fetched.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
        assert execution.__class__.objects.get(pk=execution.pk).email_status == "sent"
        # A bearer credential: the package never logs it.
        assert params["X-Amz-Signature"] not in caplog.text
        assert "X-Amz-" not in caplog.text

    def test_ad_hoc_report_gets_the_link_too_in_the_current_time_zone(
        self, smtp, user, settings, s3_endpoint, s3_reports
    ):
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=600)
        report = numbers_report(user, send_email=True, title="Q4 Sales")

        delivery.deliver(report)

        [received] = smtp.received
        assert received.rcpt_tos == [user.email]
        body = text_body(received.message)
        url, until = link_in(body)
        assert query(url)["X-Amz-Expires"] == "600"
        assert until in possible_expiries(url, 600, UTC)
        assert until.endswith(" UTC")
        assert f"Download it (sign-in required): /api/v1/reports/{report.pk}/download/" in body
        fetched = requests.get(url, timeout=10)
        assert fetched.status_code == 200
        assert fetched.content == stored_bytes(s3_endpoint, s3_reports, report)

    def test_link_does_not_outlive_the_report(self, smtp, user, settings, s3_reports):
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=604800)
        report = numbers_report(user, send_email=True)
        expires_at = (datetime.datetime.now(UTC) + datetime.timedelta(seconds=900)).replace(
            microsecond=0
        )
        Report.objects.filter(pk=report.pk).update(expires_at=expires_at)
        report.refresh_from_db()

        delivery.deliver(report)

        url, until = link_in(text_body(smtp.received[0].message))
        lifetime = int(query(url)["X-Amz-Expires"])
        assert 895 <= lifetime <= 900
        assert signed_at(url) + datetime.timedelta(seconds=lifetime) <= expires_at
        assert until in {
            shown(expires_at - datetime.timedelta(seconds=s), UTC) for s in (0, 1, 2, 5)
        }

    def test_an_expired_report_gets_no_link(self, smtp, user, settings, s3_reports):
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=3600)
        report = numbers_report(user, send_email=True)
        Report.objects.filter(pk=report.pk).update(
            expires_at=datetime.datetime.now(UTC) - datetime.timedelta(seconds=1)
        )
        report.refresh_from_db()

        delivery.deliver(report)

        body = text_body(smtp.received[0].message)
        assert "Download link" not in body
        assert "X-Amz-" not in body
        assert f"Download it (sign-in required): /api/v1/reports/{report.pk}/download/" in body

    def test_html_alternative_carries_the_same_link(
        self, smtp, owner, settings, s3_reports, tmp_path
    ):
        folder = tmp_path / "django_async_reports" / "email"
        folder.mkdir(parents=True)
        (folder / "schedule_completed_body.html").write_text(
            '{% if file_url %}<a href="{{ file_url }}">Download</a>{% endif %}'
        )
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=3600)
        _schedule, report, _execution = scheduled_report(owner)

        with override_settings(TEMPLATES=[{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]):
            delivery.deliver(report)

        message = smtp.received[0].message
        url, _until = link_in(text_body(message))
        markup = message.get_body(preferencelist=("html",)).get_content().strip()
        href = re.fullmatch(r'<a href="([^"]+)">Download</a>', markup)
        assert href is not None, markup
        assert "&amp;" in href[1]  # escaped as HTML wants it...
        assert html.unescape(href[1]) == url  # ...and the same URL


# -- no link ----------------------------------------------------------------------------------
class TestNoLink:
    def test_off_by_default_api_link_only(self, smtp, owner, settings, s3_reports):
        assert report_settings.EMAIL_LINK_EXPIRES is None
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10)
        _schedule, report, _execution = scheduled_report(owner)

        delivery.deliver(report)

        [received] = smtp.received
        assert attachments(received.message) == []
        body = text_body(received.message)
        size = report.result_data["file_size"]
        assert "X-Amz-" not in body
        assert "Download link" not in body
        assert (
            f"The file ({size}\xa0bytes) is too large to attach.\n"
            f"Download it (sign-in required): /api/v1/reports/{report.pk}/download/\n" in body
        )

    def test_local_storage_has_no_signed_url(self, smtp, owner, settings):
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=3600)
        _schedule, report, _execution = scheduled_report(owner)
        assert report.result_file.storage.path(report.result_file.name).startswith(
            str(settings.MEDIA_ROOT)
        )
        assert downloads.signed_url(report, 3600) is None

        delivery.deliver(report)

        body = text_body(smtp.received[0].message)
        assert "Download link" not in body
        assert "http" not in body  # no BASE_URL: the API link is a path, and nothing else
        assert f"Download it (sign-in required): /api/v1/reports/{report.pk}/download/" in body

    def test_unsigned_s3_urls_are_not_mailed(self, smtp, user, settings, s3_endpoint, s3_bucket):
        # Without querystring_auth url() is a plain URL of a private object: useless.
        use_s3(settings, s3_endpoint, s3_bucket, querystring_auth=False)
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=3600)
        report = numbers_report(user, send_email=True)
        assert downloads.signed_url(report, 3600) is None

        delivery.deliver(report)

        body = text_body(smtp.received[0].message)
        assert "Download link" not in body
        assert s3_endpoint not in body

    def test_attached_file_gets_no_link(self, smtp, owner, settings, s3_endpoint, s3_reports):
        set_reports(settings, EMAIL_LINK_EXPIRES=3600)  # 10 MiB attachments
        _schedule, report, _execution = scheduled_report(owner)

        delivery.deliver(report)

        message = smtp.received[0].message
        [(filename, _type, content)] = attachments(message)
        assert content == stored_bytes(s3_endpoint, s3_reports, report)
        body = text_body(message)
        assert f"The file is attached: {filename}" in body
        assert f"Also available (sign-in required): /api/v1/reports/{report.pk}/download/" in body
        assert "Download link" not in body
        assert "X-Amz-" not in body

    def test_unreadable_file_gets_no_link(self, smtp, user, settings, s3_reports):
        # A missing or tampered file is not handed out: the mail says why, as before.
        set_reports(settings, EMAIL_LINK_EXPIRES=3600)
        report = numbers_report(user, send_email=True)
        report.result_file.storage.delete(report.result_file.name)

        delivery.deliver(report)

        body = text_body(smtp.received[0].message)
        assert "The file is NOT attached: the file could not be read." in body
        assert "Download link" not in body

    def test_a_refused_value_costs_the_mail_nothing(self, smtp, user, settings, s3_reports, caplog):
        # "1h" is refused by E017; with the check silenced, the mail still goes out.
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES="1h")
        report = numbers_report(user, send_email=True)

        delivery.deliver(report)

        body = text_body(smtp.received[0].message)
        assert "Download link" not in body
        assert f"Download it (sign-in required): /api/v1/reports/{report.pk}/download/" in body
        [record] = [
            r for r in caplog.records if r.name == "django_async_reports.delivery.attachments"
        ]
        assert record.levelname == "WARNING"
        assert record.getMessage() == (
            f"Could not presign the file of report {report.pk}; its e-mail links the endpoint only."
        )

    def test_failed_run_mail_has_no_link(self, smtp, owner, settings, s3_reports):
        set_reports(settings, EMAIL_ATTACHMENT_MAX_BYTES=10, EMAIL_LINK_EXPIRES=3600)
        _schedule, report, _execution = scheduled_report(owner)
        Report.objects.filter(pk=report.pk).update(status="failed", error_message="boom")
        report.refresh_from_db()

        delivery.deliver(report)

        [received] = smtp.received
        assert received.rcpt_tos == [owner.email]
        body = text_body(received.message)
        assert "Error: boom" in body
        assert "Download link" not in body


# -- setting and check ------------------------------------------------------------------
def test_setting_default_override_and_revert():
    assert report_settings.EMAIL_LINK_EXPIRES is None
    with override_settings(ASYNC_REPORTS={"EMAIL_LINK_EXPIRES": 86400}):
        assert report_settings.EMAIL_LINK_EXPIRES == 86400
    assert report_settings.EMAIL_LINK_EXPIRES is None


@pytest.mark.parametrize("value", [None, 1, 3600, 604800])
def test_check_accepts_none_and_signable_lifetimes(value):
    with override_settings(ASYNC_REPORTS={"EMAIL_LINK_EXPIRES": value}):
        assert check_settings() == []


@pytest.mark.parametrize("value", [0, -1, 604801, "1h", "3600", True, False, 3600.0, [3600]])
def test_check_refuses_other_values(value):
    with override_settings(ASYNC_REPORTS={"EMAIL_LINK_EXPIRES": value}):
        messages = check_settings()
    assert [m.id for m in messages] == ["django_async_reports.E017"]
    assert messages[0].msg == (
        "ASYNC_REPORTS['EMAIL_LINK_EXPIRES'] must be None or an integer number of seconds "
        f"from 1 to 604800 (7 days), not {value!r}."
    )
