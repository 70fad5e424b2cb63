"""The ledger check every fault case ends with: nothing lost, stuck or done twice.

For the reports a case recorded (their ids, as the API returned them):

* every one is ``completed``, ``failed`` or ``cancelled`` before the deadline
  (none left ``pending`` or ``processing``), and notified (no step left to send);
* a completed one has exactly one stored file, whose sha256 is the recorded
  checksum; a failed or cancelled one has none;
* no report exists beyond the recorded ones (for the cases' own user);
* the execution of a scheduled one is terminal.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path

from django_async_reports.models import Report, ScheduleExecution
from tests.e2e.conftest import stored_files

TERMINAL = {"completed", "failed", "cancelled"}


def wait_terminal(report_ids: Iterable[str], *, timeout: float) -> dict[str, Report]:
    """The reports once all are terminal; AssertionError naming the others at ``timeout``."""
    ids = [str(i) for i in report_ids]
    deadline = time.monotonic() + timeout
    while True:
        reports = {str(r.pk): r for r in Report.objects.filter(pk__in=ids)}
        open_ = {
            i: (r.status, r.next_step)
            for i, r in reports.items()
            if r.status not in TERMINAL or r.next_step  # notified too: nothing left to send
        }
        missing = [i for i in ids if i not in reports]
        if not open_ and not missing:
            return reports
        if time.monotonic() > deadline:
            raise AssertionError(f"not terminal after {timeout}s: {open_}, missing rows: {missing}")
        time.sleep(0.25)


def check_ledger(report_ids: Iterable[str], media_root: Path, *, user=None, timeout: float = 90):
    """Assert the ledger (see the module docstring); returns the reports by id."""
    ids = [str(i) for i in report_ids]
    reports = wait_terminal(ids, timeout=timeout)
    for rid, report in reports.items():
        files = stored_files(media_root, rid)
        if report.status == "completed":
            assert len(files) == 1, (rid, files)
            digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
            assert "sha256:" + digest == report.result_data["checksum"], rid
        else:
            assert files == [], (rid, report.status, files)
    if user is not None:
        extra = set(map(str, Report.objects.filter(user=user).values_list("pk", flat=True)))
        assert extra <= set(ids), f"reports nobody asked for: {extra - set(ids)}"
    executions = ScheduleExecution.objects.filter(report_id__in=ids)
    assert all(e.status in ("completed", "failed") for e in executions)
    return reports
