"""The tasks of a partitioned report: one per part, and the assembly of their files.

Thin, as :mod:`.tasks`: they load by primary key and call
:mod:`.services.partitions` and :mod:`.services.part_assembly`. Both
acknowledge late and are re-queued when their worker process dies: a killed
part comes back alone and takes its part over (see ``claim_part``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError

from . import routing, services
from .exceptions import PERMANENT_ERRORS, ReportCancelled
from .models import Report
from .tasks import (
    _LATE_ACK,
    _STEP_TIME_LIMITS,
    ReportTask,
    _drop_broken_connections,
    _post_process_countdown,
)

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    base=ReportTask,
    name=routing.GENERATE_REPORT_PART,
    max_retries=3,
    soft_time_limit=600,
    **_LATE_ACK,
)
def generate_report_part(self: Any, report_id: str, run: int, index: int) -> dict[str, Any]:
    """Generate part ``index`` of the report's run ``run`` (its ``attempt``).

    A part that fails makes the whole report retry (a new run, split again),
    as a one-task run's failure does; a permanent error fails it.
    """
    run, index = int(run), int(index)
    outcome = {"report_id": report_id, "run": run, "index": index}
    takeover = bool((self.request.delivery_info or {}).get("redelivered") or self.request.retries)
    try:
        part = services.run_part(report_id, run, index, takeover=takeover)
    except ReportCancelled:
        return {**outcome, "status": "cancelled"}
    except SoftTimeLimitExceeded as exc:
        services.fail_for(report_id, exc, attempt=run, timeout=True)
        raise
    except PERMANENT_ERRORS as exc:
        services.fail_for(report_id, exc, attempt=run, prefix=f"Part {index + 1}: ")
        raise
    except Exception as exc:
        try:
            if isinstance(exc, DatabaseError):
                _drop_broken_connections()
            report = Report.objects.filter(pk=report_id, attempt=run).first()
            retrying = report is not None and services.retry_for(report, exc)
        except DatabaseError as db_exc:
            # The database is down: this part's message tries again (it may take its part over).
            countdown = _post_process_countdown(self.request.retries)
            raise self.retry(exc=db_exc, countdown=countdown) from db_exc
        if not retrying:
            services.fail_for(report_id, exc, attempt=run)
            raise
        return {**outcome, "status": "retrying"}
    if part is None:
        return {**outcome, "status": "skipped"}
    return {**outcome, "status": "done", "rows": part.rows}


@shared_task(
    bind=True,
    base=ReportTask,
    name=routing.ASSEMBLE_REPORT,
    max_retries=7,
    **_STEP_TIME_LIMITS,
    **_LATE_ACK,
)
def assemble_report(self: Any, report_id: str) -> dict[str, Any]:
    """Join the parts' files into the report's file, then hand over to post-processing."""
    try:
        report = services.assemble(report_id)
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            _drop_broken_connections()
        if self.request.retries < self.max_retries:
            services.heartbeat(report_id)
            countdown = _post_process_countdown(self.request.retries)
            raise self.retry(exc=exc, countdown=countdown) from exc
        services.fail_for(report_id, exc, prefix="Assembling the parts failed: ")
        raise
    return {"report_id": report_id, "status": "assembled" if report is not None else "skipped"}
