"""Settings of ``system.py``'s web server, workers and own process: the test settings, plus
the trivial view's URL, and a throttle and a cap that let one user's flood of reports through.

The throttle (60 creates a minute) and the cap on active reports (50) still run on
every request, cache ``INCR`` and count query included: only their limits are
raised, since the latency samples post more than 60 reports a minute and the
throughput run queues 200 reports at once.
"""

from tests.settings import *  # noqa: F403
from tests.settings import ASYNC_REPORTS as TEST_ASYNC_REPORTS

ROOT_URLCONF = "system_urls"

ASYNC_REPORTS = {
    **TEST_ASYNC_REPORTS,
    "THROTTLE_RATES": {"create": "1000000/minute"},
    "MAX_ACTIVE_REPORTS_PER_USER": 1_000_000,
}

# Persistent connections with health checks, as the example project's settings: a
# connection per request would cost both endpoints of the throughput measure alike.
DATABASES = {"default": {**DATABASES["default"], "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}}  # noqa: F405
