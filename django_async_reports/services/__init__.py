"""The one code path for requesting, running, cancelling and retrying reports.

The REST API, the admin, management commands, schedules and the Celery tasks
all call these functions. Rules kept here:

* the row is the outbox: each step's message is recorded on it (``next_step``)
  and sent once the row is committed; a message the broker did not confirm
  is sent by the sweeper;
* every status change is a conditional ``UPDATE ... WHERE status IN (...)``
  (``Report.objects.transition``), so a redelivered or retried task never runs
  a finished or cancelled report.

One module per use case: :mod:`.requests` (validate, create, reuse),
:mod:`.reuse`, :mod:`.outbox` and :mod:`.publishing` (to the broker),
:mod:`.sweeping` (what no process will send or finish any more),
:mod:`.lifecycle` (claim, retry, fail, cancel, delete), :mod:`.failures`
(an error in words for users, in full for admins), :mod:`.generation`
(the run loop), :mod:`.partitions`, :mod:`.part_assembly` and :mod:`.assembly`
(one report's parts on many workers, joined into its file), :mod:`.completion`
(the post-processing step), :mod:`.files`,
:mod:`.notify`, :mod:`.permissions` and :mod:`.limits` (who may run what, and
how much), :mod:`.erasure` (a user's files and rows, for erasure requests)
and :mod:`.orphans` (files no row owns); :mod:`.operations` (what
operators do by hand: requeue a lost generation, list stuck reports).
"""

from __future__ import annotations

from .completion import post_process
from .erasure import ErasureResult, erase_user_data
from .failures import fail_for, retry_for
from .generation import generate, paced_batches
from .lifecycle import (
    cancel_report,
    claim_report,
    delete_report,
    expiry_for,
    fail_report,
    heartbeat,
    is_running,
    retry_report,
    schedule_retry,
)
from .notify import done as notification_done
from .notify import notify, notify_report
from .operations import StuckReport, requeue_report, stuck_reports
from .orphans import OrphanSweepResult, sweep_orphan_files
from .outbox import WAITING_FOR_QUEUE
from .part_assembly import assemble
from .partitions import generate_or_split, run_part
from .requests import (
    ReportRequestResult,
    regenerate_report,
    report_fingerprint,
    request_or_reuse_report,
    request_report,
    resolve_format,
    validate_request,
)
from .reuse import find_reusable_report
from .sweeping import SweepResult, sweep

__all__ = [
    "WAITING_FOR_QUEUE",
    "ErasureResult",
    "OrphanSweepResult",
    "ReportRequestResult",
    "StuckReport",
    "SweepResult",
    "assemble",
    "cancel_report",
    "claim_report",
    "delete_report",
    "erase_user_data",
    "expiry_for",
    "fail_for",
    "fail_report",
    "find_reusable_report",
    "generate",
    "generate_or_split",
    "heartbeat",
    "is_running",
    "notification_done",
    "notify",
    "notify_report",
    "paced_batches",
    "post_process",
    "regenerate_report",
    "report_fingerprint",
    "request_or_reuse_report",
    "request_report",
    "requeue_report",
    "resolve_format",
    "retry_for",
    "retry_report",
    "run_part",
    "schedule_retry",
    "stuck_reports",
    "sweep",
    "sweep_orphan_files",
    "validate_request",
]
