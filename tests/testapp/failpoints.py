"""Fault injection for the fault tests, and only them: installed by an environment variable.

``ASYNC_REPORTS_TEST_FAILPOINT=kill-after-commit``: the process SIGKILLs itself
when a report's generation is about to be sent, that is after the row's
COMMIT and before the publish, the window where a web process killed by an
OOM killer or a gunicorn timeout used to lose the report.
"""

from __future__ import annotations

import os
import signal
from typing import Any

VARIABLE = "ASYNC_REPORTS_TEST_FAILPOINT"


def install() -> None:
    if os.environ.get(VARIABLE) != "kill-after-commit":
        return
    from django_async_reports.services import outbox

    send = outbox.send

    def killed_before_publishing(report: Any, step: str, **kwargs: Any) -> bool:
        if step == outbox.GENERATE:
            os.kill(os.getpid(), signal.SIGKILL)
        return send(report, step, **kwargs)

    outbox.send = killed_before_publishing  # type: ignore[assignment]
