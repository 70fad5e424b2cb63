"""Deleting expired reports: their files, then their rows, in batches.

Every finished report gets ``expires_at`` (the generator's ``retention`` or
``RETENTION_SECONDS``). :func:`cleanup_expired_reports` is what the periodic
task and the ``cleanup_reports`` command run. Each batch is claimed with
``SELECT ... FOR UPDATE SKIP LOCKED``, so two cleanups running at once (two
beat instances, a command started by hand) take disjoint batches and never
wait on each other. Files are deleted before the rows, inside the batch's
transaction: should the commit fail, the rows stay and the next run deletes
them (deleting a missing file is not an error); a file the storage refuses to
delete keeps its row for the next run. So no file is ever orphaned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import progress
from .conf import report_settings
from .models import Report
from .storage import delete_report_files, report_storage

logger = logging.getLogger(__name__)


@dataclass
class CleanupResult:
    """What one cleanup deleted, and how many expired reports it had to keep."""

    reports: int = 0
    files: int = 0
    batches: int = 0
    #: Reports whose file the storage refused to delete: their rows stay for the next run.
    kept: int = 0


def expired_reports(now: datetime | None = None) -> QuerySet[Report]:
    """Finished reports whose ``expires_at`` has passed (active ones never expire)."""
    return Report.objects.filter(
        status__in=Report.FINISHED_STATUSES, expires_at__lte=now or timezone.now()
    )


def cleanup_expired_reports(
    *, batch_size: int | None = None, now: datetime | None = None, max_batches: int | None = None
) -> CleanupResult:
    """Delete expired reports and their files, ``batch_size`` per transaction.

    Stops when no expired report is left unclaimed, or after ``max_batches``.
    A report whose file the storage refuses to delete keeps its row (deleting
    it would orphan the file) and is left alone for the rest of this run.
    """
    size = int(batch_size or report_settings.CLEANUP_BATCH_SIZE)
    now = now or timezone.now()
    result = CleanupResult()
    kept: set[Any] = set()
    while max_batches is None or result.batches < max_batches:
        with transaction.atomic():
            batch = list(
                expired_reports(now)
                .exclude(pk__in=kept)
                .select_for_update(skip_locked=True)
                .order_by("expires_at")
                .values_list("pk", "user_id", "result_file")[:size]
            )
            if not batch:
                break
            deleted = []
            files = 0
            for pk, user_id, name in batch:
                removed = _delete_files(pk, user_id, name)
                if removed is None:
                    kept.add(pk)
                    continue
                files += removed
                deleted.append(pk)
            Report.objects.filter(pk__in=deleted).delete()
        for pk in deleted:
            progress.delete_cache(pk)
        result.reports += len(deleted)
        result.files += files
        result.batches += 1
        logger.info("Deleted %s expired reports (%s files).", len(deleted), files)
    result.kept = len(kept)
    return result


def _delete_files(report_id: Any, user_id: Any, name: str) -> int | None:
    """Delete a report's file and its whole folder; None when the storage refused.

    The folder goes too, whatever ``result_file`` says: a failed report has
    none, yet a step killed mid-way may have left a file there. The file is
    deleted by name first, in case ``STORAGE_PREFIX`` changed since it was written.
    """
    removed = 0
    try:
        if name and report_storage.exists(name):
            report_storage.delete(name)
            removed += 1
        removed += delete_report_files(user_id, report_id)
    except Exception:
        logger.warning("Could not delete the files of expired report %s", report_id, exc_info=True)
        return None
    return removed
