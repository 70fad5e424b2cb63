"""Per-user request rates on the actions that start work: create, regenerate and run-now.

``THROTTLE_RATES`` maps each action to a rate in DRF's notation
(``"60/minute"``). DRF's ``SimpleRateThrottle`` reads a history list and
writes it back, so requests arriving at the same moment all pass; here each
action counts in a fixed window with the cache's atomic ``incr`` (Redis
``INCR``), so concurrent requests never get past the rate. A window can let
a burst of twice the rate straddle its boundary. A cache that is down lets
requests through (logged): the cache is never a dependency.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from ..conf import report_settings
from ..services.limits import THROTTLED_ACTIONS, parse_rate

logger = logging.getLogger(__name__)


class ActionRateThrottle(BaseThrottle):
    """Throttles one action of the API per user, at ``THROTTLE_RATES[action]``."""

    def __init__(self, action: str) -> None:
        self.action = action
        self._wait: float | None = None

    def rate(self) -> tuple[int, int] | None:
        """(requests, seconds) for this action, or None when it is not throttled."""
        rate = (report_settings.THROTTLE_RATES or {}).get(self.action)
        return parse_rate(rate) if rate else None

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = self.rate()
        user = request.user
        if rate is None or not getattr(user, "is_authenticated", False):
            return True
        allowed, seconds = rate
        now = time.time()
        window = int(now // seconds)
        key = f"{report_settings.CACHE_KEY_PREFIX}:throttle:{self.action}:{user.pk}:{window}"
        try:
            cache = caches[report_settings.CACHE]
            cache.add(key, 0, timeout=seconds + 1)
            count = cache.incr(key)
        except Exception:
            logger.warning("%s not throttled: the cache failed", self.action, exc_info=True)
            return True
        if count <= allowed:
            return True
        self._wait = (window + 1) * seconds - now
        return False

    def wait(self) -> float | None:
        return self._wait


def throttles_for(action: str | None) -> list[BaseThrottle]:
    """The throttle of ``action`` if it is one that starts work, else none."""
    if action in THROTTLED_ACTIONS:
        return [ActionRateThrottle(action)]
    return []
