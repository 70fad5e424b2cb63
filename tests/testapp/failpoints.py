"""Fault injection for the fault tests, and only them: installed by an environment variable.

``ASYNC_REPORTS_TEST_FAILPOINT=kill-after-commit``: the process SIGKILLs itself
when a report's generation is about to be sent, that is after the row's
COMMIT and before the publish, the window where a web process killed by an
OOM killer or a gunicorn timeout used to lose the report.

``ASYNC_REPORTS_TEST_FAILPOINT=stop-broker-at-hand-off``: a worker stops the
real RabbitMQ application (``rabbitmqctl stop_app``) just before it hands a
generated report over to post-processing, once (a marker file says so); the
test starts the broker again.
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
            marker.write_text(str(report.pk))
            subprocess.run(["rabbitmqctl", "stop_app"], timeout=120, capture_output=True)
        return send(report, step, **kwargs)

    outbox.send = broker_stopped_first  # type: ignore[assignment]
