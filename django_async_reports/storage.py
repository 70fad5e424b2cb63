"""The storage report files are written to: ``STORAGES[ASYNC_REPORTS["STORAGE"]]``."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Any

from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty
from django.utils.text import slugify

from .conf import report_settings


class ReportStorage(LazyObject):
    """Resolves the configured storage alias on first use, again after a settings change."""

    def _setup(self) -> None:
        self._wrapped = storages[report_settings.STORAGE]


report_storage = ReportStorage()


def get_report_storage() -> Storage:
    """Callable used by ``Report.result_file`` so the alias is not read at import time."""
    return report_storage  # type: ignore[return-value]


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"ASYNC_REPORTS", "STORAGES"}:
        report_storage._wrapped = empty  # type: ignore[assignment]


setting_changed.connect(_reset)

# "csv", "xlsx", "csv.gz": dot-separated ASCII letters and digits, nothing else.
_EXTENSION = re.compile(r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*\Z")


def safe_filename(title: str, extension: str) -> str:
    """A download name made of the title's slug only: nothing a user types reaches a path.

    ``extension`` comes from a writer class (``"csv"``, ``"csv.gz"``...); anything
    else than dot-separated letters and digits is refused with ``ValueError``.
    """
    if not _EXTENSION.match(extension):
        raise ValueError(f"Invalid report file extension: {extension!r}.")
    slug = slugify(title)[:60].strip("-_") or "report"
    return f"{slug}.{extension}"


def download_filename(report: Any) -> str:
    """The name a downloaded file gets: the stored file's own, server-made, name."""
    name = report.result_file.name or ""
    return name.rsplit("/", 1)[-1] or safe_filename(report.title, "csv")


def _prefix_parts() -> list[str]:
    """``STORAGE_PREFIX`` split on "/", without empty, "." or ".." segments."""
    prefix = str(report_settings.STORAGE_PREFIX)
    return [part for part in prefix.split("/") if part not in ("", ".", "..")]


def report_file_name(
    user_id: Any, report_id: uuid.UUID, title: str, extension: str, *, attempt: int = 0
) -> str:
    """Server-generated key ``<prefix>/<user id>/<report id>/[<attempt>/]<slug>.<ext>``.

    ``attempt`` (the run's claim number, from 1) gives each run its own key,
    so two runs of one report never write to the same object.

    Every segment is made here: the prefix without empty or dot segments, the
    slug of the user id, the report's UUID (re-parsed, so only a UUID passes)
    and :func:`safe_filename`. A key never starts with "/" nor climbs with "..".
    """
    user_part = slugify(str(user_id)) or "user"
    report_part = str(uuid.UUID(str(report_id)))
    attempt_part = [str(int(attempt))] if attempt else []
    filename = safe_filename(title, extension)
    return "/".join([*_prefix_parts(), user_part, report_part, *attempt_part, filename])


def report_part_name(
    user_id: Any, report_id: uuid.UUID, attempt: int, index: int, claim: int, extension: str
) -> str:
    """Key of a partitioned run's part: ``<report folder>/<attempt>/part.<index>.<claim>.<ext>``.

    Dots separate the numbers: a title's slug has none, so a part never takes
    the name of a report's file, whatever its title.
    """
    if not _EXTENSION.match(extension):
        raise ValueError(f"Invalid report file extension: {extension!r}.")
    name = f"part.{int(index):05d}.{int(claim)}.{extension}"
    return f"{report_folder(user_id, report_id)}/{int(attempt)}/{name}"


def report_folder(user_id: Any, report_id: uuid.UUID) -> str:
    """The folder (key prefix) that holds a report's files and nothing else's."""
    user_part = slugify(str(user_id)) or "user"
    return "/".join([*_prefix_parts(), user_part, str(uuid.UUID(str(report_id)))])


def storage_root() -> str:
    """The folder (key prefix) every report file is under: ``STORAGE_PREFIX``, cleaned."""
    return "/".join(_prefix_parts())


def user_folder(user_id: Any) -> str:
    """The folder (key prefix) of a user's report files: ``<prefix>/<slug of the user id>``."""
    return "/".join([*_prefix_parts(), slugify(str(user_id)) or "user"])


def join_name(folder: str, name: str) -> str:
    """``folder/name``, or ``name`` alone at the top of the storage."""
    return f"{folder}/{name}" if folder else name


def list_folder(folder: str) -> tuple[list[str], list[str]]:
    """``storage.listdir(folder)``: (sub-folders, files); both empty when it does not exist."""
    try:
        subfolders, names = get_report_storage().listdir(folder)
    except FileNotFoundError:
        return [], []
    return list(subfolders), list(names)


def list_files(folder: str) -> list[str]:
    """Every file under ``folder``, at any depth, as full storage names.

    Works on any storage with ``listdir``: the file system, and S3 (where
    folders are the key prefixes django-storages lists with a "/" delimiter).
    """
    subfolders, names = list_folder(folder)
    paths = [join_name(folder, name) for name in names]
    for sub in subfolders:
        paths += list_files(join_name(folder, sub))
    return paths


def prune_empty_folders(folder: str) -> None:
    """Remove ``folder`` and the folders under it that are empty (file system only).

    Object stores have no folders, only key prefixes: nothing to do there. A
    folder that still holds a file (one written meanwhile) stays.
    """
    try:
        local = get_report_storage().path(folder)
    except NotImplementedError:
        return
    if not os.path.isdir(local):
        return
    for path, _dirs, _files in os.walk(local, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def delete_report_files(user_id: Any, report_id: uuid.UUID, *, keep: str = "") -> int:
    """Delete every file in a report's own folder but ``keep`` (and the emptied folders).

    The folder is server-made and unique to the report, so whatever an
    interrupted step or another attempt left there (a partial upload, an
    uncompressed original, in its attempt's sub-folder) goes with the report.
    Returns how many files were deleted; storage errors propagate, so a
    caller can keep the report's row and try again later.
    """
    storage = get_report_storage()
    folder = report_folder(user_id, report_id)
    try:
        subfolders, names = storage.listdir(folder)
    except FileNotFoundError:
        return 0
    paths = [f"{folder}/{name}" for name in names]
    for sub in subfolders:  # one per attempt: keys never nest deeper
        paths += [f"{folder}/{sub}/{name}" for name in storage.listdir(f"{folder}/{sub}")[1]]
    deleted = [path for path in paths if path != keep]
    for path in deleted:
        storage.delete(path)
    try:
        local = storage.path(folder)
    except NotImplementedError:  # an object store: folders are only key prefixes
        return len(deleted)
    # Emptied folders go too; one still holding ``keep`` (or a file written
    # meanwhile) is not empty and stays.
    for sub in subfolders:
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(local, sub))
    with contextlib.suppress(OSError):
        os.rmdir(local)
    return len(deleted)


def storage_is_remote(storage: Storage | None = None) -> bool:
    """True when the storage has no local path: ``storage.path()`` raises NotImplementedError.

    File-system storages answer False; S3, GCS, Azure and other object stores
    answer True. ``storage`` defaults to the report storage.
    """
    target = get_report_storage() if storage is None else storage
    try:
        target.path("/".join(_prefix_parts()) or "reports")
    except NotImplementedError:
        return True
    return False
