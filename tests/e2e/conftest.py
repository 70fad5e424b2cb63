"""Fixtures of the end-to-end tests.

Real ``celery worker`` subprocesses on RabbitMQ, the test PostgreSQL database
and Redis; the API is driven over HTTP (pytest-django's ``live_server`` and
``requests``) with Bearer tokens, as the seed's usage examples do. Nothing is
mocked and nothing skips: a missing service is a failure.

At most one worker consumes the test queues at a time (:class:`Workers`):
most tests share a two-process worker, the priority tests stop it and run a
lone single-process worker instead.
"""

from __future__ import annotations

import email
import time
from contextlib import ExitStack
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

# The host's Celery app, which its ``proj/__init__.py`` would import: the web
# process then publishes with the configured app, and results can be read.
from tests.celery_app import app as celery_app
from tests.helpers import PROGRESS_KEYS
from tests.worker import celery_worker, purge_queues, worker_log_path

FINISHED = ("completed", "failed", "cancelled")


def wait_for(predicate, timeout=30.0, interval=0.1, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def task_result(task_id: str):
    """The Celery result (Redis backend) of a task, as the worker recorded it."""
    return celery_app.AsyncResult(task_id)


# -- workers ---------------------------------------------------------------------
class Workers:
    """Runs at most one worker on the test queues; ``use`` swaps workers when asked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.name: str | None = None
        self.proc = None
        self.log_path: Path | None = None
        self._stack: ExitStack | None = None
        self._starts = 0

    def use(self, name: str, *, concurrency: int, purge: bool = True):
        """The worker ``name``, started (after emptying the queues, unless ``purge`` is False)."""
        if self.name == name and self.proc is not None and self.proc.poll() is None:
            return self.proc
        self.stop()
        if purge:
            purge_queues()
        self._starts += 1
        # A fresh log per start, so a worker that died keeps its log.
        log_name = name if self._starts == 1 else f"{name}-{self._starts}"
        stack = ExitStack()
        self.proc = stack.enter_context(
            celery_worker(concurrency=concurrency, name=log_name, env=self.env)
        )
        self._stack = stack
        self.name = name
        self.log_path = worker_log_path(log_name)
        return self.proc

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self.name = None
            self.proc = None
            stack.close()

    def log_tail(self, size: int = 6000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")


_ACTIVE: list[Workers] = []


@pytest.fixture(scope="session")
def mail_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("worker-mail")


@pytest.fixture(scope="package")
def workers(django_db_setup, django_db_blocker, mail_dir):
    """The worker manager of the end-to-end tests; workers send mail to files in ``mail_dir``.

    Package-scoped: the last worker stops once these tests are done, so it never
    runs anything the other tests dispatch.
    """
    manager = Workers(
        {
            "ASYNC_REPORTS_TEST_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "ASYNC_REPORTS_TEST_EMAIL_FILE_PATH": str(mail_dir),
        }
    )
    _ACTIVE.append(manager)
    try:
        yield manager
    finally:
        with django_db_blocker.unblock():
            manager.stop()
        _ACTIVE.remove(manager)


@pytest.fixture
def worker(workers, django_db_blocker):
    """The shared worker (prefork, 2 processes), started once and restarted if it died."""
    with django_db_blocker.unblock():
        return workers.use("session", concurrency=2)


@pytest.fixture(scope="module")
def lone_worker(request, workers, django_db_blocker):
    """One single-process worker for the requesting module; the shared one is stopped meanwhile.

    Named by the module's ``LONE_WORKER`` (its log file's name).
    """
    with django_db_blocker.unblock():
        proc = workers.use(request.module.LONE_WORKER, concurrency=1)
    yield proc
    with django_db_blocker.unblock():
        workers.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and _ACTIVE:
        tail = _ACTIVE[0].log_tail()
        if tail:
            report.sections.append(("worker log (tail)", tail))


# -- mail ------------------------------------------------------------------------
class Mailbox:
    """Messages the workers' file-based e-mail backend wrote."""

    SEPARATOR = b"\n" + b"-" * 79 + b"\n"

    def __init__(self, path: Path) -> None:
        self.path = path

    def clear(self) -> None:
        for file in self.path.iterdir():
            file.unlink()

    def messages(self) -> list[EmailMessage]:
        found = []
        for file in sorted(self.path.iterdir()):
            # Each message is followed by the separator: a half-written one is not counted.
            complete = file.read_bytes().split(self.SEPARATOR)[:-1]
            found += [email.message_from_bytes(raw, policy=policy.default) for raw in complete]
        return found


@pytest.fixture
def mailbox(mail_dir) -> Mailbox:
    box = Mailbox(mail_dir)
    box.clear()
    return box


# -- HTTP ------------------------------------------------------------------------
class Api:
    """A ``requests`` session on the reports API, authenticated by a Bearer token."""

    def __init__(self, base_url: str, token: str | None = None, user: Any = None) -> None:
        self.root = f"{base_url}/api/v1/reports/"
        self.user = user
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str = "") -> str:
        return self.root + path

    def get(self, path: str = "", **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=10, **kwargs)

    def post(self, path: str = "", **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(path), timeout=10, **kwargs)

    def create(self, **payload: Any) -> dict[str, Any]:
        response = self.post(json=payload)
        assert response.status_code == 201, response.text
        return response.json()

    def detail(self, report_id: str) -> dict[str, Any]:
        response = self.get(f"{report_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def progress(self, report_id: str) -> dict[str, Any]:
        response = self.get(f"{report_id}/progress/")
        assert response.status_code == 200, response.text
        data = response.json()
        assert set(data) == PROGRESS_KEYS, data
        return data

    def wait_status(self, report_id: str, statuses, timeout: float = 30.0) -> dict[str, Any]:
        statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)

        def check():
            data = self.detail(report_id)
            return data if data["status"] in statuses else None

        return wait_for(
            check,
            timeout=timeout,
            interval=0.05,
            message=f"report {report_id} to be {'/'.join(statuses)}",
        )

    def wait_finished(self, report_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_status(report_id, FINISHED, timeout=timeout)

    def wait_processing(self, report_id: str, min_progress: int = 1, timeout: float = 20.0):
        """Until the report is processing with at least ``min_progress`` percent done."""

        def check():
            data = self.progress(report_id)
            assert data["status"] in ("pending", "processing"), data
            ok = data["status"] == "processing" and data["progress"] >= min_progress
            return data if ok else None

        return wait_for(
            check, timeout=timeout, interval=0.05, message=f"report {report_id} to be processing"
        )


def make_api(live_server, username: str) -> Api:
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    user = UserFactory(username=username)
    token = Token.objects.create(user=user)
    return Api(live_server.url, token.key, user)


@pytest.fixture
def alice(transactional_db, live_server):
    api = make_api(live_server, "alice")
    yield api
    api.session.close()


@pytest.fixture
def bob(transactional_db, live_server):
    api = make_api(live_server, "bob")
    yield api
    api.session.close()


@pytest.fixture
def anonymous(transactional_db, live_server):
    api = Api(live_server.url)
    yield api
    api.session.close()


@pytest.fixture
def media_root(settings) -> Path:
    return Path(settings.MEDIA_ROOT)


def stored_files(media_root: Path, report_id: str) -> list[Path]:
    """Files of a report in the storage: ``reports/<user id>/<report id>/<attempt>/...``."""
    return sorted(p for p in media_root.glob(f"reports/*/{report_id}/**/*") if p.is_file())
