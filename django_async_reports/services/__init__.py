"""The one code path for requesting, running, cancelling and retrying reports.

The REST API, the admin, management commands, schedules and the Celery tasks
all call these functions. Rules kept here:

* a task is dispatched only after the row is committed (``on_commit``), with
  a task id assigned beforehand and stored on the row;
* every status change is a conditional ``UPDATE ... WHERE status IN (...)``
  (``Report.objects.transition``), so a redelivered or retried task never runs
  a finished or cancelled report.

One module per use case: :mod:`.requests` (validate, create, reuse),
:mod:`.reuse`, :mod:`.publishing` (to the broker), :mod:`.lifecycle` (claim,
retry, fail, cancel, delete), :mod:`.generation` (the run loop),
:mod:`.completion` (the post-processing step), :mod:`.files` and
:mod:`.notify`.
"""

from __future__ import annotations

from .completion import post_process
from .generation import generate, paced_batches
from .lifecycle import (
    cancel_report,
    claim_report,
    delete_report,
    expiry_for,
    fail_report,
    is_running,
    retry_report,
    schedule_retry,
)
from .notify import notify, notify_report
from .publishing import dispatch
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

__all__ = [
    "ReportRequestResult",
    "cancel_report",
    "claim_report",
    "delete_report",
    "dispatch",
    "expiry_for",
    "fail_report",
    "find_reusable_report",
    "generate",
    "is_running",
    "notify",
    "notify_report",
    "paced_batches",
    "post_process",
    "regenerate_report",
    "report_fingerprint",
    "request_or_reuse_report",
    "request_report",
    "resolve_format",
    "retry_report",
    "schedule_retry",
    "validate_request",
]
