"""Erasing a user's reports (a GDPR request): their files in storage, then their rows.

Two ways in. :func:`erase_user_data` is the service a host calls for an
erasure request while keeping the account. And deleting the user (the admin,
``user.delete()``) runs :func:`delete_files_of_deleted_user`, a ``pre_delete``
receiver connected in ``AppConfig.ready()``: the foreign keys' cascade deletes
the rows but knows nothing of storage, so the receiver deletes the files once
the delete is committed (a rolled-back delete keeps them).

A run still writing when its rows go cannot leave a file behind: every write
of a run is a conditional update of its row (``attempt``, ``status``), and a
run whose update finds no row deletes the file it stored. Whatever a storage
refused to delete is found later by the orphan sweep (:mod:`.orphans`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from .. import progress
from ..exceptions import InvalidReportState
from ..models import Report, ReportSchedule, ScheduleExecution, WebhookDelivery
from ..storage import (
    get_report_storage,
    join_name,
    list_files,
    list_folder,
    prune_empty_folders,
    user_folder,
)
from .lifecycle import cancel_report

logger = logging.getLogger(__name__)


@dataclass
class ErasureResult:
    """What :func:`erase_user_data` deleted."""

    #: Active reports cancelled first, so their runs stop.
    cancelled: int = 0
    files: int = 0
    reports: int = 0
    schedules: int = 0
    executions: int = 0
    webhook_deliveries: int = 0


def erase_user_data(user: Any) -> ErasureResult:
    """Delete every report file of ``user`` in storage, then their reports and schedules.

    In one transaction: active reports are cancelled (their runs stop at their
    next progress check, and a file they store later is deleted by the run
    itself, its row being gone), every file under the user's folder is
    deleted, then the rows: reports, schedules, their executions and webhook
    attempts. A storage error is raised and rolls everything back, so the
    call can be repeated. The user account itself is left to the host.
    """
    result = ErasureResult()
    with transaction.atomic():
        reports = Report.objects.filter(user=user)
        for report in reports.active():
            try:
                cancel_report(report)
            except InvalidReportState:  # it finished meanwhile
                continue
            result.cancelled += 1
        report_ids = list(reports.values_list("pk", flat=True))
        names = list(reports.exclude(result_file="").values_list("result_file", flat=True))
        result.files = delete_user_files(user.pk, names)
        schedules = ReportSchedule.objects.filter(owner=user)
        _, deleted = schedules.delete()
        _, deleted_reports = reports.delete()
    for model_label, count in deleted_reports.items():
        deleted[model_label] = deleted.get(model_label, 0) + count
    result.reports = deleted.get(Report._meta.label, 0)
    result.schedules = deleted.get(ReportSchedule._meta.label, 0)
    result.executions = deleted.get(ScheduleExecution._meta.label, 0)
    result.webhook_deliveries = deleted.get(WebhookDelivery._meta.label, 0)
    for report_id in report_ids:
        progress.delete_cache(report_id)
    logger.info("Erased the report data of user %s: %s", user.pk, result)
    return result


def delete_user_files(user_id: Any, names: list[str] | tuple[str, ...] = ()) -> int:
    """Delete every file in the folder of user ``user_id`` and the files ``names``; count them.

    ``names`` are the user's ``result_file`` names, deleted by name in case
    ``STORAGE_PREFIX`` changed since they were written. A report folder whose
    row belongs to another user (two ids with one slug, such as "Bob" and
    "bob") is left alone. Storage errors propagate.
    """
    storage = get_report_storage()
    folder = user_folder(user_id)
    report_folders, loose = list_folder(folder)
    others = _folders_of_other_users(report_folders, user_id)
    paths = [join_name(folder, name) for name in loose]
    for sub in report_folders:
        if sub not in others:
            paths += list_files(join_name(folder, sub))
    inside = set(paths)
    deleted = 0
    for path in paths:
        storage.delete(path)
        deleted += 1
    for name in names:
        if name not in inside and storage.exists(name):
            storage.delete(name)
            deleted += 1
    prune_empty_folders(folder)
    return deleted


def _folders_of_other_users(report_folders: list[str], user_id: Any) -> set[str]:
    ids = {}
    for name in report_folders:
        try:
            ids[uuid.UUID(name)] = name
        except ValueError:
            continue
    owned = Report.objects.filter(pk__in=list(ids)).exclude(user_id=user_id)
    return {ids[pk] for pk in owned.values_list("pk", flat=True)}


def delete_files_of_deleted_user(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """``pre_delete`` receiver of the user model: delete their report files after the commit.

    The names are read now, while the rows exist; the files go once the
    delete is committed. Should the storage refuse, the error is logged and
    the files are left to ``manage.py sweep_orphan_files``: the user is
    deleted all the same.
    """
    user_id = instance.pk
    reports = Report.objects.using(using).filter(user_id=user_id)
    # A user with no report has no files to delete (bar orphans, which the
    # sweep finds): no storage listing per deleted user of a bulk delete.
    if user_id is None or not reports.exists():
        return
    names = list(reports.exclude(result_file="").values_list("result_file", flat=True))
    transaction.on_commit(lambda: _delete_after_commit(user_id, names), using=using)


def _delete_after_commit(user_id: Any, names: list[str]) -> None:
    try:
        count = delete_user_files(user_id, names)
    except Exception:
        logger.warning(
            "Could not delete the report files of deleted user %s; "
            "manage.py sweep_orphan_files will find them.",
            user_id,
            exc_info=True,
        )
        return
    logger.info("Deleted %s report file(s) of deleted user %s.", count, user_id)
