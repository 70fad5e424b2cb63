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
    logger.info(
        "Orphan sweep: %s orphan file(s), %s deleted, %s too young, %s unrecognised.",
        len(result.orphans),
        result.deleted,
        result.young,
        result.unrecognised,
    )
    return result


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
