"""The storage report files are written to: ``STORAGES[ASYNC_REPORTS["STORAGE"]]``."""

from __future__ import annotations

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


def safe_filename(title: str, extension: str) -> str:
    """A download name made of the title's slug only: nothing a user types reaches a path."""
    slug = slugify(title)[:60].strip("-_") or "report"
    return f"{slug}.{extension}"


def download_filename(report: Any) -> str:
    """The name a downloaded file gets: the stored file's own, server-made, name."""
    name = report.result_file.name or ""
    return name.rsplit("/", 1)[-1] or safe_filename(report.title, "csv")


def report_file_name(user_id: Any, report_id: uuid.UUID, title: str, extension: str) -> str:
    """Server-generated key ``<prefix>/<user id>/<report id>/<slug>.<ext>``."""
    prefix = report_settings.STORAGE_PREFIX.strip("/")
    return f"{prefix}/{slugify(str(user_id))}/{report_id}/{safe_filename(title, extension)}"
