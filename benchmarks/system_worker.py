"""The Celery app of ``system.py``'s workers (``celery -A system_worker``).

The test project's app (``configure_celery`` applied, the package's tasks
discovered), plus the bare task of the round trip the report latency is
compared with.
"""

import time

from tests.celery_app import app

__all__ = ["app", "started_at"]


@app.task(name="bench_system.started_at")
def started_at() -> float:
    """The worker's wall clock as the task starts: the end of a bare round trip."""
    return time.time()
