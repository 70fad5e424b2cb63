"""docs/tutorial.md, run step by step as a reader would, against the real services.

The blocks of the page (see ``tests/e2e/tutorial_doc.py`` for their directives)
run in order in a fresh folder: files written, commands run by bash, a real
Celery worker, ``celery beat`` and ``runserver`` started in the background,
``curl`` against the API, and every output the page shows compared with the real
one. Then the files the reader ends with (the CSV, the schedule, the e-mail) are
checked once more here, so loosening an output on the page cannot hide a fault.

By default the environment is this interpreter's (``sys.executable``'s folder
first on ``PATH``, so ``python``, ``django-admin`` and ``celery`` are its own)
with this checkout first on ``PYTHONPATH``: the package tested is this
checkout's, not the one installed. The page's ``setup`` block (virtualenv, pip)
is not run; its requirement is checked against the distribution's metadata
instead.

With ``ASYNC_REPORTS_TUTORIAL_WHEEL`` set to a built wheel (what
``scripts/check_release.sh`` does), the reader's way is taken instead: the
``setup`` block runs as written, in a clean environment (no ``PYTHONPATH``, no
virtualenv of ours on ``PATH``), and its ``pip install`` finds that wheel
first (``PIP_FIND_LINKS``); the files pip installed must be the wheel's.

The page names plain values for services on 127.0.0.1; the test swaps a few of
them, wherever they appear (:data:`PAGE_VALUES`), for resources of its own: a
PostgreSQL database (and Django's ``test_`` copy of it) dropped afterwards, a
RabbitMQ vhost deleted afterwards, the suite's Redis database
(``ASYNC_REPORTS_TEST_REDIS_URL``) and a free port for the server. Every
process started is stopped in a ``finally``. A service that is down fails the
test; nothing skips.
"""

from __future__ import annotations

import contextlib
import csv
import email
import io
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from email import policy
from importlib import metadata
from pathlib import Path

import pytest
from django.conf import settings
from packaging.requirements import Requirement

from tests.broker_admin import vhost
from tests.e2e.tutorial_doc import Block, output_matches, parse

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "tutorial.md"
#: The values of the page the test replaces, each by a resource of its own.
PAGE_VALUES = {
    "database": "shopdb",
    "server": "127.0.0.1:8000",
    "redis": "redis://127.0.0.1:6379/0",
    "broker": "amqp://guest:guest@127.0.0.1:5672//",
}
DISTRIBUTION = "django-async-reporting"
STEP_TIMEOUT = 90  # seconds a foreground step may take (migrate, the test run)
INSTALL_TIMEOUT = 600  # the setup block's pip install, when it runs (a wheel to test)
READY_TIMEOUT = 60  # seconds a background process may take to be ready
#: Set by bash itself: not carried from one step to the next.
SHELL_OWN_VARIABLES = {"_", "SHLVL", "PWD", "OLDPWD"}
MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what the file-based backend writes after a message
#: A built wheel to install as the reader would, instead of testing this checkout.
WHEEL = os.environ.get("ASYNC_REPORTS_TUTORIAL_WHEEL")

pytestmark = pytest.mark.e2e


class Tutorial:
    """Runs the page's blocks in ``folder``, keeping the shell's variables between steps."""

    def __init__(self, folder: Path, env: dict[str, str], values: dict[str, str]) -> None:
        self.folder = folder
        self.steps = folder.parent / "steps"  # scripts and logs, out of the reader's folder
        self.env = env
        self.values = values  # page value -> the test's value
        self.used: set[str] = set()
        self.last_output: str | None = None
        self.background: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        if not WHEEL:
            folder.mkdir()  # with a wheel, the page's setup block makes it
        self.steps.mkdir()

    # -- the blocks --------------------------------------------------------------
    def run(self, block: Block) -> None:
        getattr(self, f"_{block.kind}")(block, self.substitute(block.text))

    def substitute(self, text: str) -> str:
        for page_value, value in self.values.items():
            if page_value in text:
                self.used.add(page_value)
                text = text.replace(page_value, value)
        return text

    def _setup(self, block: Block, text: str) -> None:
        if WHEEL:
            self._install_as_written(block, text)
            return
        # The reader's virtualenv: the test uses its own. What it installs must exist.
        line = next((line for line in text.splitlines() if "pip install" in line), None)
        assert line is not None, f"{block.where()}: no pip install"
        requirement = Requirement(shlex.split(line.split("pip install", 1)[1])[0])
        assert requirement.name == DISTRIBUTION, block.where()
        dist = metadata.distribution(DISTRIBUTION)
        assert requirement.extras <= set(dist.metadata.get_all("Provides-Extra") or []), line
        for needed in map(Requirement, dist.requires or []):
            wanted = needed.marker is not None and any(
                needed.marker.evaluate({"extra": extra}) for extra in requirement.extras
            )
            if wanted:
                metadata.version(needed.name)  # raises if the extra's package is missing

    def _install_as_written(self, block: Block, text: str) -> None:
        """The setup block as the reader runs it, from the folder above the project's."""
        project = self.folder
        assert block.text.startswith(f"mkdir {project.name} && cd {project.name}\n")
        self.folder = project.parent  # the block's first line makes the project's folder
        try:
            self._shell(block, text, timeout=INSTALL_TIMEOUT)
        finally:
            self.folder = project
        assert self.env.get("VIRTUAL_ENV") == str(self.folder / ".venv"), block.where()
        _assert_installed_from(Path(WHEEL), self.env, self.folder)

    def _file(self, block: Block, text: str) -> None:
        path, *mode = block.args
        assert block.title == path, f"{block.where()}: the block's title must name {path}"
        target = self.folder / path
        if mode == ["append"]:
            assert target.is_file(), f"{block.where()}: nothing to append to"
            with target.open("a", encoding="utf-8") as fh:
                fh.write("\n" + text)
        else:
            assert not mode, block.where()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def _shell(self, block: Block, text: str, timeout: int = STEP_TIMEOUT) -> None:
        state = self.steps / f"env-{block.line}"
        # set -a: every variable a step sets is exported, so the next steps see it.
        script = f"set -e\nset -a\n{text}\nenv -0 > {shlex.quote(str(state))}\n"
        self.last_output = self._foreground(block, ["bash", "-c", script], timeout=timeout)
        pairs = (item.split("=", 1) for item in state.read_text().split("\0") if "=" in item)
        self.env = {name: value for name, value in pairs if name not in SHELL_OWN_VARIABLES}

    def _stdin(self, block: Block, text: str) -> None:
        # A file, not a pipe: `manage.py shell` reads stdin only if it is ready at once.
        source = self.steps / f"stdin-{block.line}.txt"
        source.write_text(text, encoding="utf-8")
        with source.open("rb") as stdin:
            self.last_output = self._foreground(block, list(block.args), stdin=stdin)

    def _output(self, block: Block, text: str) -> None:
        assert self.last_output is not None, f"{block.where()}: no step output to compare"
        actual, self.last_output = self.last_output, None
        assert output_matches(text, actual), (
            f"{block.where()}: the output differs from the page's.\n"
            f"--- the page shows:\n{text}\n--- the step printed:\n{actual}"
        )

    def _background(self, block: Block, text: str) -> None:
        name, keyword, ready = block.args[0], block.args[1], self.substitute(block.args[2])
        assert keyword == "wait-for", block.where()
        log = self.steps / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", text],
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        self.background[name] = (proc, log)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._is_ready(ready, log):
            assert proc.poll() is None, f"{block.where()}: {name} exited\n{self.log_tail(name)}"
            assert time.monotonic() < deadline, f"{block.where()}: {name} not ready: {ready!r}"
            time.sleep(0.2)

    # -- processes ---------------------------------------------------------------
    def _foreground(
        self, block: Block, command: list[str], stdin=subprocess.DEVNULL, timeout=STEP_TIMEOUT
    ) -> str:
        proc = subprocess.Popen(
            command,
            cwd=self.folder,
            env=self.env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            raw, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise AssertionError(f"{block.where()}: still running after {timeout}s") from None
        output = raw.decode("utf-8", "replace")
        assert proc.returncode == 0, (
            f"{block.where()}: exit status {proc.returncode}\n{output}\n{self.all_log_tails()}"
        )
        return output

    @staticmethod
    def _is_ready(ready: str, log: Path) -> bool:
        if not ready.startswith("http://"):
            return ready in log.read_text(errors="replace")
        try:
            urllib.request.urlopen(ready, timeout=2).close()
        except urllib.error.HTTPError:
            return True  # an answer, even a 401, means the server is up
        except OSError:
            return False
        return True

    def check_background_alive(self) -> None:
        for name, (proc, _log) in self.background.items():
            assert proc.poll() is None, f"{name} stopped during the tutorial\n{self.log_tail(name)}"

    def stop_background(self) -> None:
        for proc, _log in self.background.values():
            _stop_group(proc)

    def log_tail(self, name: str, size: int = 4000) -> str:
        text = self.background[name][1].read_bytes()[-size:].decode("utf-8", "replace")
        return f"--- {name} log (tail):\n{text}"

    def all_log_tails(self) -> str:
        return "\n".join(self.log_tail(name) for name in self.background)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (a worker's children too), then SIGKILL to what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)  # a worker's warm shutdown
    # What lingers: the leader, or children it left (runserver's autoreloader child).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _assert_installed_from(wheel: Path, env: dict[str, str], folder: Path) -> None:
    """What pip installed in the reader's virtualenv is the wheel's files, byte for byte."""
    script = (
        "from importlib import metadata; d = metadata.distribution('django-async-reporting');"
        "print(d.version); print(d.read_text('RECORD'))"
    )
    installed = subprocess.run(
        ["python", "-c", script], env=env, cwd=folder, capture_output=True, text=True, check=True
    ).stdout
    version, record = installed.split("\n", 1)
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        built = archive.read(name).decode()
    assert wheel.name.split("-")[1] == version, (wheel.name, version)
    # RECORD lists every file with its sha256; pip adds only its own bookkeeping.
    assert set(built.splitlines()) <= set(record.splitlines()), "not the wheel's files"


# -- the test's own resources -----------------------------------------------------
def _postgres(statement: str) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=5
    ) as conn:
        conn.execute(statement)


def _drop_databases(name: str) -> None:
    for database in (name, f"test_{name}"):  # the page's and `manage.py test`'s
        _postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _delete_cache_keys(redis_url: str) -> None:
    """The page's cache has no KEY_PREFIX: its keys are ':1:...' (the suite's are prefixed)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    keys = list(client.scan_iter(match=":1:*", count=500))
    if keys:
        client.delete(*keys)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment() -> dict[str, str]:
    """This interpreter's tools first on PATH, this checkout first on PYTHONPATH.

    With a wheel to install: a reader's shell instead, with nothing of ours on PATH or
    PYTHONPATH, and pip told where the wheel is.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV"}
        and not name.startswith(("ASYNC_REPORTS_", "CELERY_"))
    }
    bin_dir = str(Path(sys.executable).parent)
    if WHEEL:
        path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry != bin_dir]
        links = " ".join(filter(None, [str(Path(WHEEL).parent), env.get("PIP_FIND_LINKS")]))
        env.update(PATH=os.pathsep.join(path), PIP_FIND_LINKS=links, PYTHONUNBUFFERED="1")
        return env
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",  # outputs in the order they were printed
        VIRTUAL_ENV=sys.prefix,
    )
    return env


def _check_services(redis_url: str) -> None:
    import redis

    _postgres("SELECT 1")
    assert redis.Redis.from_url(redis_url, socket_timeout=5).ping()


def _mail_messages(folder: Path) -> list[email.message.EmailMessage]:
    messages = []
    for file in sorted(folder.glob("*.log")):
        for raw in file.read_bytes().split(MAIL_SEPARATOR)[:-1]:
            messages.append(email.message_from_bytes(raw, policy=policy.default))
    return messages


# -- the test ---------------------------------------------------------------------
def test_the_tutorial_runs_as_written(tmp_path):
    blocks = parse(PAGE.read_text(encoding="utf-8"))
    tag = f"tutorial_{settings.QUEUE_PREFIX}_{secrets.token_hex(4)}".lower()
    redis_url = settings.CACHES["default"]["LOCATION"]
    _check_services(redis_url)
    env = _environment()
    if not WHEEL:
        checkout = subprocess.run(
            ["python", "-c", "import django_async_reports as p; print(p.__file__)"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert checkout.startswith(str(ROOT / "django_async_reports")), checkout

    with vhost(tag) as broker_url:
        values = {
            PAGE_VALUES["database"]: tag,
            PAGE_VALUES["server"]: f"127.0.0.1:{_free_port()}",
            PAGE_VALUES["redis"]: redis_url,
            PAGE_VALUES["broker"]: broker_url,
        }
        tutorial = Tutorial(tmp_path / "reports-tutorial", env, values)
        try:
            for block in blocks:
                tutorial.run(block)
            tutorial.check_background_alive()
        finally:
            tutorial.stop_background()
            _drop_databases(tag)
            _delete_cache_keys(redis_url)

    assert tutorial.used == set(values), f"not on the page any more: {set(values) - tutorial.used}"
    assert set(tutorial.background) == {"worker", "web", "beat"}
    _check_what_the_reader_ends_with(tutorial.folder)


def _check_what_the_reader_ends_with(folder: Path) -> None:
    # The download of step 10: the December orders, in order, quoted as CSV quotes.
    assert (folder / "december-sales-report.csv").read_bytes().decode() == (
        "order_id,date,customer,total\r\n"
        "1,2024-12-01,Ana García,120.50\r\n"
        "2,2024-12-15,Bob's Bikes,35.00\r\n"
        '3,2024-12-31,"Smith, John",99.99\r\n'
    )
    # The schedule of step 11: weekly, e-mailed.
    schedule = json.loads((folder / "schedule.json").read_text())
    assert schedule["frequency"] == "weekly" and schedule["enabled"] is True
    assert schedule["send_email"] is True
    assert schedule["email_recipients"] == ["manager@example.com"]
    # Its run: one e-mail to the manager, last week's two orders attached.
    [message] = _mail_messages(folder / "sent_emails")
    assert message["To"] == "manager@example.com"
    assert message["Subject"].startswith("Weekly Sales Report (")
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "weekly-sales-report.csv"
    rows = list(csv.reader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8"))))
    assert rows[0] == ["order_id", "date", "customer", "total"]
    assert [(row[2], row[3]) for row in rows[1:]] == [
        ("Carla Diaz", "42.00"),
        ("Dan Evans", "8.25"),
    ]
