"""The health endpoint: which of the database, broker, cache and storage is down.

``GET`` answers ``{"status": "ok" | "degraded" | "down", "checks": {name:
{"ok": bool, "latency_ms": float, "error": "..."}}}``. The database and the
broker are what reports need: either down is ``"down"`` and HTTP 503. The
cache (progress) and the storage (files) down is ``"degraded"``, still 200:
reports are accepted and listed, and taking every web process out of a load
balancer for them would turn a partial outage into a full one.

Each check runs in a thread of its own and is given ``HEALTH_CHECK_TIMEOUT``
seconds: a service that hangs is reported down on time, and the thread ends
at its client's own timeout. Errors are words (:func:`exceptions.explain`)
with a reference logged next to the details: never a URL, a host or a
password in the answer. Mount with ``django_async_reports.ops_urls``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.core.cache import caches
from django.core.files.base import ContentFile
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import routing
from .conf import report_settings
from .exceptions import explain
from .storage import get_report_storage, join_name, storage_root

logger = logging.getLogger(__name__)

#: Checks whose failure means reports cannot be made: status "down", HTTP 503.
REQUIRED = ("database", "broker")


def check_database(timeout: float) -> None:
    """``SELECT 1`` on the default database, on this thread's own connection (closed after)."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connections.close_all()  # this thread's connections only: the thread ends


def check_broker(timeout: float) -> None:
    """Connect to the broker and open a channel (:func:`routing.ping_broker`)."""
    routing.ping_broker(timeout)


def check_cache(timeout: float) -> None:
    """Write, read and delete a key in the ``CACHE`` alias that progress uses."""
    cache = caches[report_settings.CACHE]
    key = f"{report_settings.CACHE_KEY_PREFIX}:health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=max(1, int(timeout) + 1))
    if cache.get(key) != "1":
        raise ConnectionError("The cache did not return what was written.")
    cache.delete(key)


def check_storage(timeout: float) -> None:
    """Write and delete a tiny file under ``STORAGE_PREFIX``: what a worker must be able to do.

    ``exists()`` alone would pass on a read-only bucket or a full disk.
    """
    storage = get_report_storage()
    name = join_name(storage_root(), f".health-{uuid.uuid4().hex}")
    name = storage.save(name, ContentFile(b"ok"))
    storage.delete(name)


#: The checks, in the order of the answer.
CHECKS: dict[str, Callable[[float], None]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
    "storage": check_storage,
}


def _timed(check: Callable[[float], None], timeout: float) -> tuple[float, BaseException | None]:
    """(milliseconds the check took, the exception it raised or None)."""
    started = time.perf_counter()
    try:
        check(timeout)
    except Exception as exc:
        return _ms_since(started), exc
    return _ms_since(started), None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def run_checks(checks: dict[str, Callable[[float], None]] | None = None) -> dict[str, Any]:
    """Run every check at once, each bounded by ``HEALTH_CHECK_TIMEOUT``; the answer's body."""
    checks = CHECKS if checks is None else checks
    timeout = float(report_settings.HEALTH_CHECK_TIMEOUT)
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="async-reports-health")
    started = time.perf_counter()
    futures = {name: pool.submit(_timed, check, timeout) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)  # a hung check ends on its own
    results: dict[str, Any] = {}
    for name, future in futures.items():
        if not future.done():
            logger.warning("Health check %r did not answer within %s s.", name, timeout)
            results[name] = {
                "ok": False,
                "latency_ms": _ms_since(started),
                "error": f"No answer within {timeout:g} s.",
            }
            continue
        latency, exc = future.result()
        results[name] = {"ok": exc is None, "latency_ms": latency}
        if exc is not None:
            text = explain(exc)  # words and a reference; the details go to the log
            logger.warning("Health check %r failed: %s", name, text.detail)
            results[name]["error"] = text.message
    return {"status": overall_status(results), "checks": results}


def overall_status(results: dict[str, Any]) -> str:
    """``down`` when a required check failed, ``degraded`` when another did, else ``ok``."""
    failed = {name for name, result in results.items() if not result["ok"]}
    if failed & set(REQUIRED):
        return "down"
    return "degraded" if failed else "ok"


@never_cache
@require_safe
def health_view(request: HttpRequest) -> JsonResponse:
    """The health of the services reports depend on; 503 when reports cannot be made."""
    body = run_checks()
    return JsonResponse(body, status=503 if body["status"] == "down" else 200)
