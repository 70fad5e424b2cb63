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

import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import progress
from .conf import report_settings
from .models import Report
from .storage import report_storage

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
                .values_list("pk", "result_file")[:size]
            )
            if not batch:
                break
            deleted = []
            files = 0
            for pk, name in batch:
                if name:
                    if not _delete_file(name):
                        kept.add(pk)
                        continue
                    files += 1
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


def _delete_file(name: str) -> bool:
    """Delete a report's file, anything else left in its own folder, and the folder.

    The folder ``<prefix>/<user>/<report id>/`` belongs to the report alone
    (the key is server-made), so a leftover, such as the uncompressed original
    of a post-processing step that crashed before removing it, goes too.
    """
    try:
        report_storage.delete(name)
    except Exception:
        logger.warning("Could not delete expired report file %s", name, exc_info=True)
        return False
    folder = name.rsplit("/", 1)[0] if "/" in name else ""
    if folder:
        try:
            for leftover in report_storage.listdir(folder)[1]:
                report_storage.delete(f"{folder}/{leftover}")
        except (FileNotFoundError, NotImplementedError):
            pass  # already gone, or a storage that cannot list
        except Exception:
            logger.warning("Could not list or clean the folder %s", folder, exc_info=True)
    try:
        path = os.path.dirname(report_storage.path(name))
    except NotImplementedError:  # remote storage: folders are only key prefixes
        return True
    with contextlib.suppress(OSError):  # not empty, or already gone
        os.rmdir(path)
    return True
