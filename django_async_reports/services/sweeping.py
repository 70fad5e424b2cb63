"""The sweeper: what no process is going to do any more, done.

Run by beat every ``SWEEP_INTERVAL`` seconds (``configure_celery``) and by the
``sweep_reports`` command. Two jobs:

* **Unsent steps** (:mod:`.outbox`): a row whose next step is due and was not
  confirmed sent (the broker was down, or the process died between its
  COMMIT and its publish) is sent now. A report accepted while the broker
  was down starts this way once it is back.
* **Lost runs**: a processing report with no heartbeat (a progress write) for
  longer than its hard time limit plus ``STUCK_MARGIN`` has no live run: the
  run's worker and message are gone (the message was acknowledged while the
  database was down, say). A generated one is handed to post-processing
  again; another is queued again under a new task id, so the old message
  can never take it back, and counts as a lost worker: after
  ``MAX_WORKER_LOSSES`` it fails.

The parts of a partitioned run whose message the broker never confirmed
are sent too (:func:`~.partitions.send_unsent_parts`).

Rows are claimed with ``SKIP LOCKED``: two sweepers never handle one row. A
step sent twice (a slow publisher and the sweeper) is harmless: each step
starts with a conditional update.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import progress
from ..conf import report_settings
from ..models import Report
from ..registry import registry
from . import outbox
from .lifecycle import fail_report, worker_lost_message
from .outbox import publish_grace
from .partitions import send_unsent_parts
from .publishing import generation_limits

logger = logging.getLogger(__name__)

Status = Report.Status

#: Rows handled per transaction of each job.
BATCH_SIZE = 200


@dataclasses.dataclass
class SweepResult:
    """What one sweep did."""

    sent: int = 0  # unsent steps sent
    cleared: int = 0  # steps no longer due (the report moved on)
    requeued: int = 0  # lost runs queued again (or handed to post-processing)
    failed: int = 0  # lost runs that failed for good (lost too often)
    broker_down: bool = False  # a publish failed: the rest waits for the next sweep

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in dataclasses.asdict(self).items()}


def sweep(now: datetime | None = None) -> SweepResult:
    """Take back lost runs, then send every due step; see the module's docstring."""
    now = now or timezone.now()
    result = SweepResult()
    take_back_lost_runs(now, result)
    if not result.broker_down:
        send_due_steps(now, result)
    if not result.broker_down:
        parts_sent, result.broker_down = send_unsent_parts(now)
        result.sent += parts_sent
    if result.sent or result.requeued or result.failed or result.broker_down:
        logger.info("Sweep: %s", result.as_dict())
    return result


def _matches(report: Report) -> bool:
    """Whether the row's recorded step still makes sense for its status."""
    if report.next_step == outbox.GENERATE:
        return report.status == Status.PENDING
    if report.next_step == outbox.POST_PROCESS:
        return report.status == Status.PROCESSING and bool(report.result_file)
    if report.next_step == outbox.ASSEMBLE:
        return report.status == Status.PROCESSING and not report.result_file
    return report.status in Report.FINISHED_STATUSES


def send_due_steps(now: datetime, result: SweepResult) -> None:
    """Send the steps due for longer than :func:`publish_grace`, oldest first."""
    while True:
        with transaction.atomic():
            batch = list(
                Report.objects.select_for_update(skip_locked=True)
                .exclude(next_step="")
                .filter(next_step_at__lte=now - publish_grace())
                .order_by("next_step_at")[:BATCH_SIZE]
            )
            for report in batch:
                if not _matches(report):
                    Report.objects.filter(pk=report.pk, next_step=report.next_step).update(
                        next_step="", next_step_at=None
                    )
                    result.cleared += 1
                elif outbox.send(report, report.next_step):
                    result.sent += 1
                else:
                    result.broker_down = True
                    return
        if len(batch) < BATCH_SIZE:
            return


def take_back_lost_runs(now: datetime, result: SweepResult) -> None:
    """Hand over or queue again the processing reports whose run is gone."""
    margin = timedelta(seconds=int(report_settings.STUCK_MARGIN))
    # "": a type no longer registered, with the default limits.
    types = [*(generator.report_type for generator in registry), ""]
    shortest = min(generation_limits(name)[1] for name in types)
    with transaction.atomic():
        candidates = list(
            Report.objects.select_for_update(skip_locked=True)
            .filter(
                status=Status.PROCESSING,
                next_step="",
                updated_at__lt=now - timedelta(seconds=shortest) - margin,
            )
            .order_by("updated_at")[:BATCH_SIZE]
        )
        for report in candidates:
            hard_limit = generation_limits(report.report_type)[1]
            if report.updated_at >= now - timedelta(seconds=hard_limit) - margin:
                continue
            if not _take_back(report, result):
                result.broker_down = True
                return


def _take_back(report: Report, result: SweepResult) -> bool:
    """Hand a lost run over; False when the broker refused the message."""
    run = Report.objects.filter(attempt=report.attempt)  # fenced: the lost run's claim
    if report.result_file:
        # Generated, and the post-processing step was lost: send it again.
        if not run.transition(report.pk, Status.PROCESSING, **outbox.due(outbox.POST_PROCESS)):
            return True
        result.requeued += 1
        report.refresh_from_db()
        return outbox.send(report, outbox.POST_PROCESS)
    losses = report.worker_losses + 1
    if losses >= int(report_settings.MAX_WORKER_LOSSES):
        if fail_report(report.pk, worker_lost_message(losses), attempt=report.attempt):
            result.failed += 1
        return True
    logger.warning("Report %s has no live run; queueing it again.", report.pk)
    moved = run.transition(
        report.pk,
        Status.PROCESSING,
        status=Status.PENDING,
        celery_task_id=str(uuid.uuid4()),  # the lost message can never take it back
        worker_losses=F("worker_losses") + 1,
        progress_message="Queued again: its worker was lost",
        **outbox.due(outbox.GENERATE),
    )
    if not moved:
        return True
    result.requeued += 1
    progress.write_cache(report.pk, status=Status.PENDING, message="Queued again")
    report.refresh_from_db()
    return outbox.send(report, outbox.GENERATE)
