"""The ledger check every fault case ends with: nothing lost, stuck or done twice.

For the reports a case recorded (their ids, as the API returned them):

* every one is ``completed``, ``failed`` or ``cancelled`` before the deadline
  (none left ``pending`` or ``processing``), and notified (no step left to send);
* a completed one has exactly one stored file, whose sha256 is the recorded
  checksum; a failed or cancelled one has none;
* no report exists beyond the recorded ones (for the cases' own user);
* the execution of a scheduled one is terminal;
* what left (:class:`Ledger`): one e-mail per completed or failed report that
  asked for one, one webhook per outcome of a report that gave a URL, each
  with the final status, none for the others; a message sent again (at least
  once) keeps its id, and is allowed only where the case says so;
* no worker process died that the case did not kill.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


#: The stored objects of a report: its id -> {name: content}.
StoredObjects = Callable[[str], dict[str, bytes]]


def media_files(media_root: Path) -> StoredObjects:
    """The stored objects of a report in a file-system storage rooted at ``media_root``."""
    return lambda rid: {str(p): p.read_bytes() for p in stored_files(media_root, rid)}


def check_ledger(
    report_ids: Iterable[str],
    media_root: Path | None = None,
    *,
    user=None,
    timeout: float = 90,
    stored: StoredObjects | None = None,
):
    """Assert the ledger (see the module docstring); returns the reports by id.

    Files are looked up under ``media_root``, or by ``stored`` (an object store).
    """
    ids = [str(i) for i in report_ids]
    reports = wait_terminal(ids, timeout=timeout)
    if stored is None:
        assert media_root is not None
        stored = media_files(media_root)
    for rid, report in reports.items():
        files = stored(rid)
        if report.status == "completed":
            assert len(files) == 1, (rid, list(files))
            [content] = files.values()
            digest = hashlib.sha256(content).hexdigest()
            assert "sha256:" + digest == report.result_data["checksum"], rid
        else:
            assert files == {}, (rid, report.status, list(files))
    if user is not None:
        extra = set(map(str, Report.objects.filter(user=user).values_list("pk", flat=True)))
        assert extra <= set(ids), f"reports nobody asked for: {extra - set(ids)}"
    executions = ScheduleExecution.objects.filter(report_id__in=ids)
    assert all(e.status in ("completed", "failed") for e in executions)
    return reports


# -- what left: e-mails and webhooks -----------------------------------------------------
MAILED = {"completed", "failed"}  # a cancelled report mails nobody; its webhook still goes


def check_deliveries(
    reports: dict[str, Report],
    mails: Sequence[Any],
    hooks: Sequence[Any],
    *,
    resent: bool = False,
    executions: dict[str, ScheduleExecution] | None = None,
) -> None:
    """One e-mail and one webhook per outcome (see the module docstring).

    ``mails`` are e-mail messages (``Message-ID`` names the report, or the
    execution of a scheduled one), ``hooks`` are received webhook requests
    (``.headers``, ``.json()``). ``executions``: the execution of each scheduled
    report, by report id; what it wants is what its schedule asked for, as its
    delivery statuses record. With ``resent``, a message may arrive more than
    once, always under the same id.
    """
    executions = executions or {}
    mail_ids = Counter(str(m["Message-ID"]) for m in mails)
    hook_ids: Counter[str] = Counter()
    hook_reports: dict[str, set[str]] = {}
    for request in hooks:
        body = request.json()
        rid = str(body["data"]["report_id"])
        hook_ids[request.headers["webhook-id"]] += 1
        hook_reports.setdefault(rid, set()).add(f"{request.headers['webhook-id']} {body['type']}")
    for rid, report in reports.items():
        execution = executions.get(rid)
        if execution is None:
            mailed = {i: n for i, n in mail_ids.items() if f"-{rid}-" in i}
            wanted = 1 if report.send_email and report.status in MAILED else 0
            assert all(f"-{report.status}-" in i for i in mailed), (rid, report.status, mailed)
        else:
            mailed = {i: n for i, n in mail_ids.items() if f"-{execution.pk}@" in i}
            statuses = (execution.email_status, execution.webhook_status)
            assert not set(statuses) & {"pending", "sending"}, (rid, statuses)
            wanted = 1 if execution.email_status == "sent" else 0
        assert len(mailed) == wanted, f"{rid} ({report.status}): e-mails {mailed}"
        posted = hook_reports.get(rid, set())
        if execution is None:
            wanted = 1 if report.webhook_url else 0
        else:
            wanted = 1 if execution.webhook_status == "sent" else 0
        assert len(posted) == wanted, f"{rid} ({report.status}): webhooks {posted}"
        assert all(p.endswith(f" report.{report.status}") for p in posted), (rid, posted)
        if not resent:
            copies = [n for n in mailed.values() if n > 1]
            copies += [hook_ids[p.split()[0]] for p in posted if hook_ids[p.split()[0]] > 1]
            assert not copies, f"{rid}: sent more than once {copies}"


# -- worker processes --------------------------------------------------------------------
def worker_deaths(log: bytes) -> list[str]:
    """Lines of a worker log telling that a pool process died (killed, or out of memory)."""
    return [
        line.decode("utf-8", "replace")
        for line in log.splitlines()
        if b"exited with 'signal" in line or b"WorkerLostError" in line
    ]


@dataclass
class _Watched:
    workers: Any  # tests.e2e.conftest.Workers
    path: Path | None = None
    offset: int = 0

    def start(self) -> None:
        self.path = self.workers.log_path
        self.offset = self.path.stat().st_size if self.path and self.path.exists() else 0

    def new_lines(self) -> bytes:
        """What its workers logged since :meth:`start` (across a restart, both logs)."""
        seen = b""
        if self.path is not None and self.path.exists():
            seen = self.path.read_bytes()[self.offset :]
        current = self.workers.log_path
        if current is not None and current != self.path and current.exists():
            seen += current.read_bytes()
        return seen


@dataclass
class Ledger:
    """The ledger of one fault case: :func:`check_ledger`, what left, and worker deaths."""

    media_root: Path
    smtp: Any  # tests.loopback_servers.SMTPServer
    receiver: Any  # tests.loopback_servers.WebhookReceiver
    watch: list[Any] = field(default_factory=list)
    stored: StoredObjects | None = None  # an object store's files instead of media_root's

    def __post_init__(self) -> None:
        self._watched = [_Watched(w) for w in self.watch]
        for watched in self._watched:
            watched.start()

    def also_watch(self, workers: Any) -> None:
        """Count deaths in the workers a case starts itself too."""
        watched = _Watched(workers)
        watched.start()
        self._watched.append(watched)

    def check(
        self,
        report_ids: Iterable[str],
        *,
        user: Any = None,
        timeout: float = 90,
        resent: bool = False,
        killed: bool = False,
    ) -> dict[str, Report]:
        """Assert the whole ledger; ``killed``: the case itself killed worker processes."""
        reports = check_ledger(
            report_ids, self.media_root, user=user, timeout=timeout, stored=self.stored
        )
        # A webhook is its own task, queued by the notification: it may land a
        # moment after the row says "notified". Wait for every expected one.
        deadline = time.monotonic() + 30
        while True:
            try:
                self._check_deliveries(reports, resent=resent)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        time.sleep(1)  # a copy sent twice would arrive now
        self._check_deliveries(reports, resent=resent)
        if not killed:
            deaths = [line for w in self._watched for line in worker_deaths(w.new_lines())]
            assert not deaths, f"worker processes died: {deaths}"
        return reports

    def _check_deliveries(self, reports: dict[str, Report], *, resent: bool) -> None:
        executions = ScheduleExecution.objects.filter(report_id__in=list(reports))
        check_deliveries(
            reports,
            [received.message for received in self.smtp.received],
            self.receiver.received(),
            resent=resent,
            executions={str(e.report_id): e for e in executions.select_related("schedule")},
        )
