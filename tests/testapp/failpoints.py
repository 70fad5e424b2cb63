"""Fault injection for the fault tests, and only them: installed by an environment variable.

``ASYNC_REPORTS_TEST_FAILPOINT=kill-after-commit``: the process SIGKILLs itself
when a report's generation is about to be sent, that is after the row's
COMMIT and before the publish, the window where a web process killed by an
OOM killer or a gunicorn timeout used to lose the report.

``ASYNC_REPORTS_TEST_FAILPOINT=stop-broker-at-hand-off``: a worker stops the
real RabbitMQ application (``rabbitmqctl stop_app``) just before it hands a
generated report over to post-processing, once (a marker file says so); the
test starts the broker again.

``ASYNC_REPORTS_TEST_FAILPOINT=restart-database-in-post-processing``: a worker
restarts the real PostgreSQL (``pg_ctlcluster ... restart -m fast``) as the
first post-processing starts, once: the step meets a database outage with
the report's file already stored.
"""

from __future__ import annotations

import os
import signal
from typing import Any

VARIABLE = "ASYNC_REPORTS_TEST_FAILPOINT"


def install() -> None:
    failpoint = os.environ.get(VARIABLE)
    if failpoint == "stop-broker-at-hand-off":
        _stop_broker_at_hand_off()
    if failpoint == "restart-database-in-post-processing":
        _restart_database_in_post_processing()
    if failpoint != "kill-after-commit":
        return
    from django_async_reports.services import outbox

    send = outbox.send

    def killed_before_publishing(report: Any, step: str, **kwargs: Any) -> bool:
        if step == outbox.GENERATE:
            os.kill(os.getpid(), signal.SIGKILL)
        return send(report, step, **kwargs)

    outbox.send = killed_before_publishing  # type: ignore[assignment]


def _stop_broker_at_hand_off() -> None:
    import subprocess
    from pathlib import Path

    from django_async_reports.services import outbox

    marker = Path(os.environ["ASYNC_REPORTS_TEST_FAILPOINT_MARKER"])
    send = outbox.send

    def broker_stopped_first(report: Any, step: str, **kwargs: Any) -> bool:
        if step == outbox.POST_PROCESS and not marker.exists():
            marker.write_text(str(report.pk))  # once, whatever happens next
            # The worker may cancel this very run when its connection drops.
            subprocess.run(["rabbitmqctl", "stop_app"], timeout=120, capture_output=True)
        return send(report, step, **kwargs)

    outbox.send = broker_stopped_first  # type: ignore[assignment]


def _restart_database_in_post_processing() -> None:
    import subprocess
    from pathlib import Path

    from django_async_reports import services

    marker = Path(os.environ["ASYNC_REPORTS_TEST_FAILPOINT_MARKER"])
    post_process = services.post_process

    def after_a_database_restart(report_id: Any) -> Any:
        if not marker.exists():
            marker.write_text("")  # once, whatever happens next
            version = sorted(os.listdir("/etc/postgresql"))[0]
            cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
            subprocess.run([*cluster, "restart", "-m", "fast"], timeout=120, capture_output=True)
            marker.write_text(str(report_id))  # restarted: the test may go on
        return post_process(report_id)

    services.post_process = after_a_database_restart  # type: ignore[assignment]
