"""The assembly step of a partitioned report: its parts' files joined into the report's file.

Recorded on the report row (``next_step = "assemble"``) by the part that
finished last, then sent; the sweeper sends it when that process died first.
Like the generation it replaces, it ends by recording the file on the row,
fenced by the run's attempt, and handing over to post-processing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models.functions import Greatest

from .. import progress
from ..models import Report, ReportPart
from ..registry import registry
from ..storage import report_file_name, report_storage
from . import outbox
from .assembly import PartFile, join_parts
from .files import delete_file
from .partitions import part_files, writer_class_for

logger = logging.getLogger(__name__)

Status = Report.Status


def assemble(report_id: Any) -> Report | None:
    """Join the run's part files in order, record the file, send post-processing.

    None when there is nothing to do: the report is no longer processing, is
    assembled already (a redelivered message), or a part is not done.
    """
    report = (
        Report.objects.filter(pk=report_id, status=Status.PROCESSING, result_file="")
        .select_related("user")
        .first()
    )
    if report is None:
        return None
    parts = part_files(report)
    if not parts or any(part.status != ReportPart.Status.DONE for part in parts):
        logger.info("Report %s: not every part is done; nothing to assemble.", report_id)
        return None
    generator = registry.get(report.report_type)(report=report, user=report.user)
    params = generator.get_params(report.parameters)
    writer_class = writer_class_for(report)
    name = report_file_name(
        report.user_id,
        report.pk,
        generator.get_filename(),
        writer_class.extension,
        attempt=report.attempt,
    )
    stored = join_parts(
        report_storage,  # type: ignore[arg-type]
        [PartFile(part.file_name, part.file_size) for part in parts],
        name,
    )
    row_count = sum(part.rows for part in parts)
    result_data: dict[str, Any] = {
        "format": writer_class.format,
        "row_count": row_count,
        "columns": generator.get_columns(),
        "parts": len(parts),
    }
    summary = generator.summary(params, row_count)
    if summary is not None:
        result_data["summary"] = summary
    updated = Report.objects.filter(attempt=report.attempt, result_file="").transition(
        report.pk,
        Status.PROCESSING,
        result_file=stored,
        result_data=result_data,
        progress=Greatest("progress", 99),
        progress_message="Finalising",
        **outbox.due(outbox.POST_PROCESS),
    )
    if not updated:
        current = Report.objects.filter(pk=report.pk).values_list("result_file", flat=True).first()
        if current != stored:
            delete_file(stored)
        return None
    for part in parts:  # in the report's file now
        delete_file(part.file_name)
    progress.write_cache(report.pk, progress=99, message="Finalising", rows=row_count)
    report.refresh_from_db()
    outbox.send(report, outbox.POST_PROCESS)
    return report
