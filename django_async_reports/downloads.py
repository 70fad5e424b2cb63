"""Serving a report's file: a redirect to a short-lived storage URL, or streamed by Django.

Used by the API's download action and the admin's staff download view. The
caller checks who may download and that the report is completed and not
expired; this module only decides *how* the bytes reach the client, and
builds the link to the download endpoint that e-mails and webhooks carry
(:func:`download_url`).
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.utils.http import content_disposition_header

from .conf import report_settings
from .exceptions import ReportConfigurationError
from .storage import download_filename, get_report_storage, storage_is_remote

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request

    from .models import Report

GZIP_CONTENT_TYPE = "application/gzip"
FALLBACK_CONTENT_TYPE = "application/octet-stream"


def download_content_type(report: Report) -> str:
    """The Content-Type of the report's file.

    ``application/gzip`` for a compressed report, else the content type of the
    writer of ``result_data["format"]`` (or of the file's extension), else
    ``application/octet-stream``.
    """
    from .writers import get_writer_class

    result_data = report.result_data or {}
    if result_data.get("compressed"):
        return GZIP_CONTENT_TYPE
    name = report.result_file.name or ""
    fmt = result_data.get("format") or name.rsplit("/", 1)[-1].rpartition(".")[2]
    try:
        return get_writer_class(str(fmt)).content_type
    except LookupError:
        return FALLBACK_CONTENT_TYPE


def should_redirect(storage: Storage | None = None) -> bool:
    """Whether downloads redirect to the storage's URL rather than stream through Django.

    ``ASYNC_REPORTS["DOWNLOAD_REDIRECT"]`` when it is True or False. When it is
    None: redirect when the storage is remote (no local path) and its URLs are
    signed; an S3 storage with ``querystring_auth=False`` (or a custom domain
    without a CloudFront signer) hands out plain URLs, so its files are streamed.
    """
    storage = get_report_storage() if storage is None else storage
    setting = report_settings.DOWNLOAD_REDIRECT
    if setting is not None:
        return bool(setting)
    if not storage_is_remote(storage):
        return False
    return not _is_s3(storage) or _s3_urls_are_signed(storage)


def download_url(report: Report) -> str | None:
    """Absolute link to the authenticated download endpoint, when it can be built.

    ``ASYNC_REPORTS["BASE_URL"]`` is put before the path; without it the path
    alone is returned. None when the app's URLs are not mounted.
    """
    try:
        path = reverse("django_async_reports:report-download", kwargs={"pk": report.pk})
    except NoReverseMatch:
        return None
    base = report_settings.BASE_URL
    return f"{base.rstrip('/')}{path}" if base else path


def storage_url(report: Report, *, expires: int | None = None) -> str:
    """A URL of the report's file minted now, valid ``expires`` seconds where the storage signs.

    For django-storages' S3 storage the URL is presigned for ``expires`` seconds
    (default ``DOWNLOAD_URL_EXPIRES``) and makes S3 answer with the report's
    download name and content type. Other storages get ``expire=`` when their
    ``url()`` takes it (Azure) and otherwise use their own lifetime setting (GCS).
    """
    storage = get_report_storage()
    name = report.result_file.name
    expires = int(report_settings.DOWNLOAD_URL_EXPIRES if expires is None else expires)
    if _is_s3(storage):
        parameters = {
            "ResponseContentDisposition": content_disposition_header(
                as_attachment=True, filename=download_filename(report)
            ),
            "ResponseContentType": download_content_type(report),
        }
        return str(storage.url(name, parameters=parameters, expire=expires))  # type: ignore[call-arg]
    kwargs: dict[str, Any] = {"expire": expires} if _accepts(storage.url, "expire") else {}
    return str(storage.url(name, **kwargs))


def signed_url(report: Report, expires: int) -> str | None:
    """A presigned URL of the report's file valid ``expires`` seconds, or None where none exists.

    Only where the report storage is django-storages' S3 storage handing out
    signed URLs (``querystring_auth``, and a CloudFront signer with a custom
    domain), the test :func:`should_redirect` makes without regard to
    ``DOWNLOAD_REDIRECT``. Local storages, unsigned S3 URLs and other storages
    (whose ``url()`` may ignore the lifetime) give None, as does a report
    without a file. The URL is a bearer credential: never log it.
    """
    storage = get_report_storage()
    if not report.result_file.name or not _is_s3(storage) or not _s3_urls_are_signed(storage):
        return None
    return storage_url(report, expires=expires)


def download_response(report: Report, request: HttpRequest | Request) -> HttpResponseBase:
    """The response to a download of ``report``: a 302 to a fresh URL, or the file streamed.

    The caller has checked ownership (or staff permission) and that the report
    is completed and unexpired. A missing file is a 404. A redirect carries
    ``Cache-Control: no-store``: its Location is a credential for the file.
    """
    storage = get_report_storage()
    name = report.result_file.name
    if not name:
        raise Http404("The report has no file.")
    if should_redirect(storage):
        if not storage.exists(name):
            raise Http404("The report file is no longer available.")
        try:
            url = storage_url(report)
        except NotImplementedError:
            if report_settings.DOWNLOAD_REDIRECT:
                raise ReportConfigurationError(
                    'ASYNC_REPORTS["DOWNLOAD_REDIRECT"] is True but the report storage '
                    f"({type(storage).__name__}) has no url(): set it to None or False."
                ) from None
        else:
            if not urlsplit(url).netloc:  # a storage URL relative to this site
                url = request.build_absolute_uri(url)
            response: HttpResponseBase = HttpResponseRedirect(url)
            response["Cache-Control"] = "no-store"
            return response
    return _stream(report, storage, name)


def _stream(report: Report, storage: Storage, name: str) -> FileResponse:
    try:
        fh = storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The report file is no longer available.") from None
    response = FileResponse(
        fh,
        as_attachment=True,
        filename=download_filename(report),
        content_type=download_content_type(report),
    )
    # The file is one user's data: no shared cache may keep it.
    response["Cache-Control"] = "private, no-store"
    return response


def _is_s3(storage: Storage) -> bool:
    """An S3Storage of django-storages (or a subclass), without importing boto3 when absent."""
    module = sys.modules.get("storages.backends.s3")
    return module is not None and isinstance(storage, module.S3Storage)


def _s3_urls_are_signed(storage: Any) -> bool:
    if not getattr(storage, "querystring_auth", False):
        return False
    if not getattr(storage, "custom_domain", None):
        return True
    return getattr(storage, "cloudfront_signer", None) is not None


def _accepts(function: Any, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
