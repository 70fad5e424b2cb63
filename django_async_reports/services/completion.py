"""The post-processing step: compress when asked, measure, and mark the report completed."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from .. import events, progress
from ..models import Report
from ..storage import delete_report_files, get_report_storage
from . import files, outbox
from .lifecycle import expiry_for, hand_over_place
from .s3_stream import STREAMED_KEY

logger = logging.getLogger(__name__)

Status = Report.Status


def post_process(report_id: Any) -> Report | None:
    """Compress when asked, record size, checksum and row count, mark completed.

    The second step (file work in :mod:`.files`); hands over to the notification. None when the
    report is not (or no longer) processing with a file: it was cancelled,
    failed, or this step already ran.
    """
    report = Report.objects.filter(pk=report_id, status=Status.PROCESSING).first()
    if report is None or not report.result_file:
        return None
    original = report.result_file.name
    streamed = report.result_data.get(STREAMED_KEY) or {}
    if streamed.get("name") == original:
        # Uploaded as it was written (gzip included), and measured on the way.
        stored = files.StoredFile(**streamed)
    elif report.compress and not original.endswith(files.GZIP_EXTENSION):
        stored = files.compress(get_report_storage(), original)
    else:
        stored = files.measure(get_report_storage(), original)
    result_data = {
        **{key: value for key, value in report.result_data.items() if key != STREAMED_KEY},
        "file_size": stored.size,
        "checksum": stored.checksum,
        "compressed": stored.name.endswith(files.GZIP_EXTENSION),
    }
    if result_data["compressed"]:
        result_data["uncompressed_size"] = stored.uncompressed_size
    now = timezone.now()
    updated = Report.objects.transition(
        report.pk,
        Status.PROCESSING,
        status=Status.COMPLETED,
        result_file=stored.name,
        result_data=result_data,
        error_message="",  # an earlier attempt's error no longer applies
        error_detail="",
        progress=100,
        progress_message="Completed",
        completed_at=now,
        expires_at=expiry_for(report.report_type, now),
        updated_at=now,
        **outbox.due(outbox.NOTIFY),
    )
    if not updated:
        # Cancelled or failed meanwhile: nothing stored is wanted. Or a duplicate
        # run of this step (a redelivered message) completed it first: the file
        # it completed with is the report's and stays.
        kept = (
            Report.objects.filter(pk=report.pk, status=Status.COMPLETED)
            .values_list("result_file", flat=True)
            .first()
        )
        for name in {stored.name, original} - {kept}:
            files.delete_file(name)
        return None
    # The report's file is the stored one: the uncompressed original, and
    # anything an interrupted attempt left in the report's folder, go.
    if stored.name != original:
        files.delete_file(original)
    try:
        delete_report_files(report.user_id, report.pk, keep=stored.name)
    except Exception:
        logger.warning("Could not sweep the folder of report %s", report.pk, exc_info=True)
    progress.write_cache(report.pk, status=Status.COMPLETED, progress=100, message="Completed")
    hand_over_place(report.user_id)
    report.refresh_from_db()
    events.log_event(events.COMPLETED, report)
    outbox.send(report, outbox.NOTIFY)
    return report
