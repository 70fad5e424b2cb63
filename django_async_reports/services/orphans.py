"""The orphan sweep: report files in storage whose report row no longer exists.

Rows and files are deleted together by every path of the package, but a
storage can refuse a delete (an outage during a user's deletion), a user can
be deleted by raw SQL, or files can come from a restored backup. This walks
the report storage under ``STORAGE_PREFIX``, laid out as
``<user>/<report id>/[<attempt>/]<name>``, and finds the files no row owns.

Files a row owns are never orphans, including those of a report being written
right now. Files younger than ``ORPHAN_GRACE_SECONDS`` are left alone too, in
case something stored a file a moment before committing its row. Anything
that does not follow the layout (a folder whose name is not a report id) is
counted as unrecognised and never deleted, unless its user folder belongs to
no user at all.

On S3 it also finds the incomplete multipart uploads a killed worker left under
the prefix (no listing of objects shows them) and, with ``delete``, aborts them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.text import slugify

from ..conf import report_settings
from ..models import Report
from ..storage import (
    get_report_storage,
    join_name,
    list_files,
    list_folder,
    prune_empty_folders,
    storage_root,
)
from . import s3_stream

logger = logging.getLogger(__name__)


@dataclass
class OrphanSweepResult:
    """What one sweep found and, with ``delete``, deleted."""

    #: Orphan files old enough to go: deleted when ``deleted`` says so.
    orphans: list[str] = field(default_factory=list)
    deleted: int = 0
    #: Orphan files younger than the grace period (or undated), kept for a later sweep.
    young: int = 0
    #: Files outside the layout in folders of existing users, never deleted.
    unrecognised: int = 0
    #: Files that belong to a report row.
    owned: int = 0
    #: Deletes the storage refused (logged).
    failed: int = 0
    #: Incomplete S3 multipart uploads no running generation writes (a killed worker's),
    #: begun before the grace period: aborted when ``aborted_uploads`` says so.
    stale_uploads: list[str] = field(default_factory=list)
    aborted_uploads: int = 0


def sweep_orphan_files(
    *, delete: bool = False, grace_seconds: float | None = None, now: datetime | None = None
) -> OrphanSweepResult:
    """Find the report files no report row owns; delete them when ``delete`` is True.

    A dry run by default. ``grace_seconds`` defaults to ``ORPHAN_GRACE_SECONDS``;
    0 turns the grace period off (and with it the need for the storage's
    ``get_modified_time``: a storage without it keeps every orphan otherwise).
    """
    grace = float(report_settings.ORPHAN_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    cutoff = (now or timezone.now()) - timedelta(seconds=grace)
    result = OrphanSweepResult()
    root = storage_root()
    user_folders, loose = list_folder(root)
    result.unrecognised += len(loose)
    for user_part in user_folders:
        folder = join_name(root, user_part)
        old = []
        for path in _orphans_in_user_folder(folder, user_part, result):
            if grace > 0 and not _older_than(path, cutoff):
                result.young += 1
            else:
                old.append(path)
        result.orphans += old
        if delete and old:
            _delete(old, result)
            prune_empty_folders(folder)
    _sweep_uploads(root, cutoff if grace > 0 else None, delete, result)
    logger.info(
        "Orphan sweep: %s orphan file(s), %s deleted, %s too young, %s unrecognised; "
        "%s stale upload(s), %s aborted.",
        len(result.orphans),
        result.deleted,
        result.young,
        result.unrecognised,
        len(result.stale_uploads),
        result.aborted_uploads,
    )
    return result


def _sweep_uploads(
    root: str, cutoff: datetime | None, delete: bool, result: OrphanSweepResult
) -> None:
    """Find (and with ``delete`` abort) the incomplete S3 uploads no live generation owns.

    A generation aborts its own upload on any error; one whose worker was
    killed cannot. An upload is live while its report is processing under the
    attempt its key names (``<user>/<report id>/<attempt>/<name>``): a long
    report may upload for hours. Keys outside that layout are left alone.
    """
    storage = get_report_storage()
    try:
        listed = s3_stream.pending_uploads(storage, root)
    except Exception:  # s3:ListBucketMultipartUploads not granted: the files' sweep stands
        logger.warning("Could not list the incomplete uploads under %r", root, exc_info=True)
        return
    uploads = [upload for upload in listed if cutoff is None or upload.initiated < cutoff]
    layout = {upload: _report_attempt(upload.name, root) for upload in uploads}
    ids = {found[0] for found in layout.values() if found is not None}
    live = set(
        Report.objects.filter(pk__in=ids, status=Report.Status.PROCESSING).values_list(
            "pk", "attempt"
        )
    )
    for upload, found in layout.items():
        if found is None or found in live:
            continue
        result.stale_uploads.append(upload.name)
        if delete:
            try:
                s3_stream.abort_upload(storage, upload)
            except Exception:
                logger.warning("Could not abort the upload of %s", upload.key, exc_info=True)
                result.failed += 1
            else:
                result.aborted_uploads += 1


def _report_attempt(name: str, root: str) -> tuple[uuid.UUID, int] | None:
    """(report id, attempt) of a key laid out as ``<root>/<user>/<report id>/<attempt>/<name>``."""
    parts = name[len(root) :].lstrip("/").split("/") if root else name.split("/")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    try:
        return uuid.UUID(parts[1]), int(parts[2])
    except ValueError:
        return None


def _orphans_in_user_folder(folder: str, user_part: str, result: OrphanSweepResult) -> list[str]:
    """The files of ``folder`` (one user's) that no row owns, dated or not."""
    report_folders, loose = list_folder(folder)
    ids: dict[uuid.UUID, str] = {}
    odd: list[str] = []
    for name in report_folders:
        try:
            ids[uuid.UUID(name)] = name
        except ValueError:
            odd.append(name)
    owners = Report.objects.filter(pk__in=list(ids)).values_list("pk", "user_id")
    owned = {pk for pk, user_id in owners if (slugify(str(user_id)) or "user") == user_part}
    orphans: list[str] = []
    for report_id, name in ids.items():
        files = list_files(join_name(folder, name))
        if report_id in owned:
            result.owned += len(files)
        else:
            orphans += files
    outside = [join_name(folder, name) for name in loose]
    for name in odd:
        outside += list_files(join_name(folder, name))
    if outside and not _user_exists(user_part):
        orphans += outside  # the whole folder is a deleted user's
    else:
        result.unrecognised += len(outside)
    return orphans


def _user_exists(user_part: str) -> bool:
    """Whether a user's folder name is the slug of an existing user's id (True when unsure)."""
    model = get_user_model()
    try:
        pk = model._meta.pk.to_python(user_part)
    except (ValidationError, ValueError, TypeError):
        return True
    return model._default_manager.filter(pk=pk).exists()


def _older_than(path: str, cutoff: datetime) -> bool:
    """Whether the file was last written before ``cutoff``; False when the storage cannot tell."""
    try:
        modified = get_report_storage().get_modified_time(path)
    except (NotImplementedError, FileNotFoundError, OSError):
        return False
    if timezone.is_naive(modified):
        modified = timezone.make_aware(modified, timezone.get_current_timezone())
    return bool(modified < cutoff)


def _delete(paths: list[str], result: OrphanSweepResult) -> None:
    storage = get_report_storage()
    for path in paths:
        try:
            storage.delete(path)
        except Exception:
            logger.warning("Could not delete orphan report file %s", path, exc_info=True)
            result.failed += 1
        else:
            result.deleted += 1
