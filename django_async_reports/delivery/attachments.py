"""Whether a completed report's e-mail carries its file: attached, or linked, and why.

A file is attached when it is at most ``EMAIL_ATTACHMENT_MAX_BYTES`` and reads
back with the checksum recorded at completion; otherwise the mail links the
download endpoint and says why nothing is attached. With ``EMAIL_LINK_EXPIRES``
set and an S3 storage that signs its URLs, a file too large to attach also
gets a presigned URL (:func:`file_link`), a bearer credential never logged.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from ..conf import report_settings
from ..downloads import signed_url
from ..models import Report
from ..storage import download_filename, report_storage

logger = logging.getLogger(__name__)


@dataclass
class ReportFile:
    """What a completed report's mail carries: the file, or why it does not."""

    name: str
    size: int | None
    content: bytes | None = None
    mimetype: str = "application/octet-stream"
    too_large: bool = False
    error: str = ""  # why the file could not be attached, for the reader

    @property
    def attached(self) -> bool:
        return self.content is not None


def report_file(report: Report) -> ReportFile:
    """Read a completed report's file for attaching, unless it is too large or unreadable.

    The content is checked against the checksum recorded at completion: a
    truncated or replaced file is linked, not attached.
    """
    name = download_filename(report)
    size = report.result_data.get("file_size")
    limit = int(report_settings.EMAIL_ATTACHMENT_MAX_BYTES or 0)
    file = ReportFile(name=name, size=size if isinstance(size, int) else None)
    guessed, encoding = mimetypes.guess_type(name)
    # A compressed report is attached as the .gz file it is, not as its content.
    file.mimetype = (
        "application/gzip" if encoding == "gzip" else guessed or "application/octet-stream"
    )
    if not report.result_file:
        file.error = "the report has no stored file"
        return file
    if file.size is not None and file.size > limit:
        file.too_large = True
        return file
    try:
        with report_storage.open(report.result_file.name, "rb") as fh:
            content = fh.read(limit + 1)
    except Exception:
        logger.warning(
            "Could not read the file of report %s to attach it; linking it instead.",
            report.pk,
            exc_info=True,
        )
        file.error = "the file could not be read"
        return file
    if len(content) > limit:
        file.too_large = True
        return file
    checksum = report.result_data.get("checksum")
    if checksum and checksum != f"sha256:{hashlib.sha256(content).hexdigest()}":
        logger.error("The file of report %s does not match its checksum.", report.pk)
        file.error = "the stored file does not match its recorded checksum"
        return file
    file.size = len(content)
    file.content = content
    return file


def file_link(report: Report, file: ReportFile) -> tuple[str | None, datetime | None]:
    """A presigned URL of a file too large to attach, and the time it stops working.

    ``(None, None)`` unless ``EMAIL_LINK_EXPIRES`` is set, the file is too large
    (an unreadable or tampered file gets no link) and the storage signs its URLs
    (see :func:`~django_async_reports.downloads.signed_url`). The lifetime is cut
    to the report's ``expires_at``, so the link never outlives the report's
    retention; an expired report gets none. The URL is a bearer credential:
    nothing here logs it.
    """
    setting = report_settings.EMAIL_LINK_EXPIRES
    if setting is None or not file.too_large:
        return None, None
    now = timezone.now()  # before signing: the URL is valid at least until now + lifetime
    try:
        lifetime = int(setting)  # a value E017 refuses must not cost the mail its report
        if report.expires_at is not None:
            lifetime = min(lifetime, int((report.expires_at - now).total_seconds()))
        if lifetime <= 0:
            return None, None
        url = signed_url(report, lifetime)
    except Exception:
        logger.warning(
            "Could not presign the file of report %s; its e-mail links the endpoint only.",
            report.pk,
            exc_info=True,
        )
        return None, None
    if url is None:
        return None, None
    return url, now + timedelta(seconds=lifetime)
