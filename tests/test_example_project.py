"""The example project, run as a user runs it: its own settings, in subprocesses.

Checks and migrations first; then a migrated, seeded project in a temporary
``EXAMPLE_VAR_DIR`` with a real Celery worker on the embedded file-system
broker and ``runserver`` on a free port, and every report type requested,
followed and downloaded over HTTP with the Bearer token, as the seed's usage
example does. Last, the seed's schedule example over HTTP with a real
``celery beat`` (ticking every 2 s through ``SCHEDULE_TICK_INTERVAL``) and
report e-mails sent to a real SMTP server (aiosmtpd) on 127.0.0.1.

No external service is involved: the environment variables that would switch
to PostgreSQL, RabbitMQ, Redis or another mail server are removed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.loopback_servers import Received, SMTPServer, attachments, text_body

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "example_project"
EXTERNAL_SERVICE_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_DEBUG",
    "DJANGO_EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "SITE_URL",
    "SCHEDULE_TICK_INTERVAL",
    "WEBHOOK_ALLOWED_NETWORKS",
    "WEBHOOK_ALLOWED_PORTS",
    "EMAIL_ALLOWED_DOMAINS",
)
SEED_ORDERS = 5000  # more than one 2000-row chunk, so keyset pagination is exercised
SEED_CUSTOMERS = 300
STARTUP_TIMEOUT = 30.0
REPORT_TIMEOUT = 30.0
TICK_INTERVAL = 2  # seconds between beat's ticks in these tests (60 by default)


def example_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in EXTERNAL_SERVICE_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        EXAMPLE_VAR_DIR=str(var_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run ``manage.py`` in the example project; return its stdout, fail with its output."""
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"manage.py {' '.join(args)} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def shell_json(env: dict[str, str], code: str) -> Any:
    """Run ``code`` in ``manage.py shell``; its last output line is JSON."""
    out = manage(env, "shell", "-v", "0", "-c", code)
    return json.loads(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its children."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


@pytest.fixture(autouse=True)
def _clean_media_and_cache():
    """Replace the suite's autouse fixture of the same name: these tests touch neither
    the test settings' cache (Redis) nor their media, only their own temporary folders,
    so they need no service and never flush the cache of a suite running alongside."""
    yield


# -- without services ----------------------------------------------------------------
def test_system_checks_pass(tmp_path):
    out = manage(example_env(tmp_path), "check", "--fail-level", "WARNING")
    assert "no issues" in out


# -- the file-system broker -------------------------------------------------------------
BROKER_MODULE = PROJECT / "config" / "broker.py"
PRODUCER = """
import importlib.util, json, sys, time
from kombu import Connection
spec = importlib.util.spec_from_file_location("example_broker", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
options, count = json.loads(sys.argv[2]), int(sys.argv[3])
with Connection("filesystem://", transport=module.Transport, transport_options=options) as c:
    for i in range(count):
        c.default_channel._put("q", {"i": i, "pad": "x" * 2000})
        time.sleep(0.0005)
"""


def load_broker_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_broker", BROKER_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def broker_channel(transport: Any, folder: Path) -> Any:
    from kombu import Connection

    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(folder), "store_processed": False}  # fmt: skip
    return Connection("filesystem://", transport=transport, transport_options=options)


def test_file_system_broker_never_delivers_a_message_being_written(tmp_path):
    """kombu's own transport hands a worker message files still empty (a few in a thousand,
    each one stopping the worker); config.broker renames complete files into place."""
    from queue import Empty

    broker = load_broker_module()
    count = 3000
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "control_folder": str(tmp_path), "store_processed": False}  # fmt: skip
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(BROKER_MODULE), json.dumps(options), str(count)]
    )
    received: list[int] = []
    undecodable = 0
    try:
        with broker_channel(broker.filesystem.Transport, tmp_path) as conn:
            # Read with kombu's own _get, which has no defence: only _put differs.
            get = broker.filesystem.Channel._get.__get__(conn.default_channel)
            deadline = time.monotonic() + 60
            while len(received) + undecodable < count and time.monotonic() < deadline:
                try:
                    received.append(get("q")["i"])
                except Empty:
                    pass
                except ValueError:
                    undecodable += 1
    finally:
        producer.wait(timeout=60)
    assert producer.returncode == 0
    assert undecodable == 0
    assert sorted(received) == list(range(count))


def test_file_system_broker_skips_partial_and_drops_undecodable_files(tmp_path):
    from queue import Empty

    broker = load_broker_module()
    with broker_channel(broker.Transport, tmp_path) as conn:
        channel = conn.default_channel
        # Named to sort before kombu's own "<monotonic ms>_<uuid>.q.msg" whatever the
        # machine's uptime ("0" sorts before any number kombu writes).
        (tmp_path / "0_a.q.msg.part").write_bytes(b'{"being": "wri')  # another put, unfinished
        (tmp_path / "0_b.q.msg").write_bytes(b"")  # kombu's own put, not yet written
        channel._put("q", {"n": 1})
        with pytest.raises(Empty):
            channel._get("q")  # the empty file: dropped, the worker goes on
        assert channel._get("q") == {"n": 1}
        with pytest.raises(Empty):
            channel._get("q")
        assert [p.name for p in tmp_path.iterdir()] == ["0_a.q.msg.part"]


# -- the running project -------------------------------------------------------------
@pytest.fixture(scope="module")
def smtp() -> Iterator[SMTPServer]:
    """A real SMTP server on 127.0.0.1 that the example's worker sends its e-mails to."""
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory, smtp) -> dict[str, Any]:
    """A migrated, seeded project with its demo user's token and the counts to expect."""
    var_dir = tmp_path_factory.mktemp("example-var")
    port = free_port()
    env = example_env(var_dir)
    env.update(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        SITE_URL=f"http://127.0.0.1:{port}",
        SCHEDULE_TICK_INTERVAL=str(TICK_INTERVAL),
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "seed_demo_data",
        "--orders",
        str(SEED_ORDERS),
        "--customers",
        str(SEED_CUSTOMERS),
        # Up to today, as the demo seeds: the schedules' "last week" has orders.
        "--end-date",
        datetime.now(timezone.utc).date().isoformat(),
    )
    token = manage(env, "demo_token").strip()
    assert len(token) == 40, token
    # Counted with plain ORM queries, independently of the generators' code.
    expected = shell_json(
        env,
        "import json; from django.db.models import Sum; "
        "from shop.models import Customer, Order, Product; "
        "sales = ('paid', 'shipped', 'delivered'); "
        "dec = Order.objects.filter(created_at__date__range=('2024-12-01', '2024-12-31'), "
        "status__in=sales); "
        "y2024 = Order.objects.filter(created_at__year=2024, status__in=sales); "
        "print(json.dumps({"
        "'sales': dec.count(), "
        "'inventory': Product.objects.filter(category='books').count(), "
        "'customers': Customer.objects.filter(region='east').count(), "
        "'orders': Order.objects.count(), "
        "'analytics': y2024.dates('created_at', 'month').count(), "
        "'analytics_orders': y2024.count(), "
        "'analytics_revenue': str(y2024.aggregate(s=Sum('total'))['s'].quantize("
        "__import__('decimal').Decimal('0.01')))}))",
    )
    return {"env": env, "var_dir": var_dir, "port": port, "token": token, "expected": expected}


@pytest.fixture(scope="module")
def server(project) -> Iterator[str]:
    """A Celery worker and ``runserver``, started as the demo does; yields the base URL."""
    env, var_dir = project["env"], project["var_dir"]
    worker_log, web_log = var_dir / "worker.log", var_dir / "web.log"
    port = project["port"]
    procs: list[subprocess.Popen] = []
    with open(worker_log, "wb") as wlog, open(web_log, "wb") as slog:
        try:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker",
                 "-Q", "reports,reports_high_priority", "-c", "2", "--loglevel", "INFO",
                 "-n", f"example-tests-{os.getpid()}@%h"],
                cwd=PROJECT, env=env, stdout=wlog, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            procs.append(worker)
            web = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=PROJECT, env=env, stdout=slog, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            procs.append(web)
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + STARTUP_TIMEOUT
            worker_ready = web_ready = False
            while not (worker_ready and web_ready):
                assert worker.poll() is None, f"worker exited:\n{tail(worker_log)}"
                assert web.poll() is None, f"runserver exited:\n{tail(web_log)}"
                assert time.monotonic() < deadline, (
                    f"not ready after {STARTUP_TIMEOUT}s\nworker:\n{tail(worker_log)}\n"
                    f"web:\n{tail(web_log)}"
                )
                worker_ready = worker_ready or b" ready." in worker_log.read_bytes()
                if not web_ready:
                    try:
                        requests.get(f"{base_url}/api/v1/reports/", timeout=2)
                        web_ready = True  # any answer (401 here) means it serves
                    except requests.ConnectionError:
                        pass
                time.sleep(0.2)
            yield base_url
        finally:
            for proc in reversed(procs):
                stop(proc)


class Api(requests.Session):
    """A session sending the demo user's Bearer token, with the reports API's base URL."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__()
        self.base = base
        self.headers["Authorization"] = f"Bearer {token}"


@pytest.fixture
def api(server, project) -> Iterator[Api]:
    with Api(f"{server}/api/v1/reports/", project["token"]) as session:
        yield session


def wait_until_finished(api: Api, report_id: str, var_dir: Path) -> list[dict[str, Any]]:
    """Poll the progress endpoint as the seed's example does; return every answer."""
    seen = []
    deadline = time.monotonic() + REPORT_TIMEOUT
    while True:
        response = api.get(f"{api.base}{report_id}/progress/", timeout=10)
        assert response.status_code == 200, response.text
        data = response.json()
        seen.append(data)
        if data["status"] in ("completed", "failed", "cancelled"):
            return seen
        assert time.monotonic() < deadline, (
            f"report {report_id} still {data} after {REPORT_TIMEOUT}s\n"
            f"worker log:\n{tail(var_dir / 'worker.log')}"
        )
        time.sleep(0.2)


DECEMBER_2024 = {"start_date": "2024-12-01", "end_date": "2024-12-31"}
YEAR_2024_BY_MONTH = {"start_date": "2024-01-01", "end_date": "2024-12-31", "group_by": "month"}
CASES = {
    # The seed's usage example.
    "sales": {"priority": "high", "parameters": DECEMBER_2024},
    "inventory": {"priority": "low", "parameters": {"category": "books"}},
    "customers": {"priority": "normal", "parameters": {"region": "east"}},
    # Urgent: through the second queue, reports_high_priority.
    "orders": {"priority": "urgent", "parameters": {}},
    "analytics": {"priority": "normal", "parameters": YEAR_2024_BY_MONTH},
}


@pytest.mark.parametrize("report_type", list(CASES))
def test_report_type_end_to_end(api, project, report_type):
    types = {t["report_type"]: t for t in api.get(f"{api.base}types/", timeout=10).json()}
    assert set(CASES) <= set(types)

    response = api.post(
        api.base,
        json={"report_type": report_type, "title": f"Test {report_type}", **CASES[report_type]},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    report_id = response.json()["id"]

    progress = wait_until_finished(api, report_id, project["var_dir"])
    report = api.get(f"{api.base}{report_id}/", timeout=10).json()
    assert progress[-1]["status"] == "completed", report
    assert progress[-1]["progress"] == 100
    percents = [p["progress"] for p in progress]
    assert percents == sorted(percents), percents

    download = api.get(f"{api.base}{report_id}/download/", timeout=30)
    assert download.status_code == 200, download.text
    assert download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    assert header == types[report_type]["columns"]
    assert all(len(row) == len(header) for row in body)

    expected = project["expected"]
    assert len(body) == expected[report_type] > 0
    result = report["result_data"]
    assert result["row_count"] == len(body)
    assert result["file_size"] == len(download.content)

    if report_type == "orders":
        ids = [int(row[0]) for row in body]
        assert len(set(ids)) == len(ids), "keyset pagination repeated rows"
        stamps = [row[1] for row in body]
        assert stamps == sorted(stamps)
    if report_type == "analytics":
        summary = result["summary"]
        assert summary["order_count"] == expected["analytics_orders"]
        assert summary["total_revenue"] == expected["analytics_revenue"]
        assert Decimal(summary["average_order_value"]) == (
            Decimal(summary["total_revenue"]) / summary["order_count"]
        ).quantize(Decimal("0.01"))
        assert len(summary["top_products"]) == 5
        assert set(summary["revenue_by_region"]) <= {"north", "south", "east", "west", "central"}
        assert [row[0] for row in body] == [f"2024-{m:02d}" for m in range(1, 13)]
        assert sum(int(row[1]) for row in body) == summary["order_count"]


def test_api_requires_the_bearer_token(server, project):
    url = f"{server}/api/v1/reports/"
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    wrong = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert wrong.status_code == 401
    ok = requests.get(url, headers={"Authorization": f"Bearer {project['token']}"}, timeout=10)
    assert ok.status_code == 200


def test_openapi_document_swagger_ui_and_redoc_are_served_without_a_cdn(server, project):
    schema = requests.get(f"{server}/api/schema/?format=json", timeout=10)
    assert schema.status_code == 200, schema.text[:500]
    assert "/api/v1/reports/{id}/download/" in schema.json()["paths"]
    for page in ("api/docs/", "api/redoc/"):
        html = requests.get(f"{server}/{page}", timeout=10)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+drf_spectacular_sidecar[^"]+)"', html.text)
        assert assets, html.text[:1000]
        assert "cdn.jsdelivr.net" not in html.text and "unpkg.com" not in html.text
        for asset in assets:
            served = requests.get(f"{server}{asset}", timeout=10)
            assert served.status_code == 200, asset


def test_health_and_metrics_are_mounted(server):
    health = requests.get(f"{server}/health/", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    metrics = requests.get(f"{server}/metrics/", timeout=10)
    assert metrics.status_code == 200, metrics.text
    assert "django_async_reports_queue_consumers" in metrics.text
    assert 'django_async_reports_source_up{source="broker"} 1.0' in metrics.text


def test_invalid_parameters_are_rejected_before_queueing(api):
    response = api.post(
        api.base,
        json={
            "report_type": "sales",
            "parameters": {"start_date": "2024-12-31", "end_date": "2024-12-01"},
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert "end_date" in response.json()["parameters"]


# -- schedules, beat and e-mail ------------------------------------------------------------
#: The seed's schedule example, verbatim.
SEED_SCHEDULE = {
    "report_type": "sales",
    "title": "Weekly Sales Report",
    "frequency": "weekly",
    "parameters": {"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"},
    "send_email": True,
    "email_recipients": ["manager@example.com"],
}
TICK_SENT = b"Sending due task django_async_reports.tick_schedules"
#: An execution is over once neither it nor its e-mail is still on its way.
UNFINISHED = {"pending", "running", "sending"}
TICK_DONE = re.compile(rb"Task django_async_reports\.tick_schedules\[[^]]+\] succeeded")


@pytest.fixture
def beat(server, project) -> Iterator[Path]:
    """``celery -A config beat`` as the demo starts it; yields its log."""
    log = project["var_dir"] / "beat.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            cwd=PROJECT, env=project["env"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(
                lambda: TICK_SENT in log.read_bytes(),
                STARTUP_TIMEOUT,
                "beat to send its first tick",
                lambda: f"beat exited:\n{tail(log)}" if proc.poll() is not None else None,
                log,
            )
            yield log
        finally:
            stop(proc)


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    broken: Callable[[], str | None] | None = None,
    *logs: Path,
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the logs after a while."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        problem = broken() if broken else None
        assert problem is None, problem
        if time.monotonic() > deadline:
            shown = "\n".join(f"{log.name}:\n{tail(log)}" for log in logs)
            pytest.fail(f"Waited {timeout}s for {what}.\n{shown}")
        time.sleep(0.25)


def messages_to(smtp: SMTPServer, address: str) -> list[Received]:
    return [m for m in smtp.received if address in m.rcpt_tos]


def tick_count(log: Path, pattern: re.Pattern[bytes]) -> int:
    return len(pattern.findall(log.read_bytes()))


def test_seed_schedule_with_beat_and_email_end_to_end(api, project, smtp, beat):
    """The issue's "Done when" over HTTP: accepted, run now, mailed, listed, ticked, toggled."""
    var_dir = project["var_dir"]
    logs = (var_dir / "worker.log", beat, var_dir / "web.log")
    schedules_url = f"{api.base}schedules/"
    types = api.get(f"{api.base}types/", timeout=10).json()
    columns = {t["report_type"]: t["columns"] for t in types}
    smtp.clear()

    # 1. The seed's example is accepted as is.
    response = api.post(schedules_url, json=SEED_SCHEDULE, timeout=10)
    assert response.status_code == 201, response.text
    schedule = response.json()
    url = f"{schedules_url}{schedule['id']}/"
    assert response.headers["Location"].endswith(f"/api/v1/reports/schedules/{schedule['id']}/")
    assert schedule["enabled"] is True
    assert schedule["parameters"] == SEED_SCHEDULE["parameters"]  # stored unrendered
    assert (schedule["weekday"], schedule["time_of_day"]) == (0, "08:00:00")  # Monday 08:00
    next_run = datetime.fromisoformat(schedule["next_run_at"].replace("Z", "+00:00"))
    assert next_run.weekday() == 0 and next_run > datetime.now(timezone.utc)
    listed = api.get(schedules_url, timeout=10).json()["results"]
    assert schedule["id"] in [s["id"] for s in listed]

    # 2. run-now: a report at once, recorded as a manual execution.
    response = api.post(f"{url}run-now/", timeout=10)
    assert response.status_code == 201, response.text
    manual = response.json()
    assert manual["trigger"] == "manual" and manual["report_id"]
    progress = wait_until_finished(api, manual["report_id"], var_dir)
    assert progress[-1]["status"] == "completed", progress[-1]
    report = api.get(f"{api.base}{manual['report_id']}/", timeout=10).json()
    start = date.fromisoformat(report["parameters"]["start_date"])
    end = date.fromisoformat(report["parameters"]["end_date"])
    # Rendered at run time: last week, Monday to Sunday (UTC, the schedule's zone).
    today = datetime.now(timezone.utc).date()
    assert start.weekday() == 0 and end - start == timedelta(days=6)
    assert today - timedelta(days=14) <= start <= today - timedelta(days=7)
    expected_rows = shell_json(
        project["env"],
        "import json; from shop.models import Order; print(json.dumps(Order.objects.filter("
        f"created_at__date__range=('{start}', '{end}'), "
        "status__in=('paid', 'shipped', 'delivered')).count()))",
    )
    assert expected_rows > 0  # the project is seeded up to today
    assert report["result_data"]["row_count"] == expected_rows

    # 3. Listed in the history, completed and mailed.
    def manual_execution_done() -> dict[str, Any] | None:
        runs = api.get(f"{url}executions/", timeout=10).json()["results"]
        done = [r for r in runs if r["id"] == manual["id"]]
        if done and not {done[0]["status"], done[0]["email_status"]} & UNFINISHED:
            return done[0]
        return None

    execution = wait_for(manual_execution_done, REPORT_TIMEOUT, "the e-mail status", None, *logs)
    assert execution["status"] == "completed", execution
    assert execution["email_status"] == "sent", execution
    assert execution["row_count"] == expected_rows
    assert execution["report_id"] == manual["report_id"]
    assert execution["file_size"] == report["result_data"]["file_size"]

    # 4. The e-mail reached the SMTP server, with the CSV attached.
    received = wait_for(
        lambda: messages_to(smtp, "manager@example.com"), 15, "the e-mail", None, *logs
    )
    assert len(received) == 1, [m.message["Subject"] for m in received]
    message = received[0].message
    assert message["To"] == "manager@example.com"
    assert "Weekly Sales Report" in message["Subject"]
    files = attachments(message)
    assert len(files) == 1, files
    filename, content_type, content = files[0]
    assert filename is not None and filename.endswith(".csv")
    assert content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    assert rows[0] == columns["sales"]
    assert len(rows) - 1 == expected_rows
    assert len(content) == execution["file_size"]
    # Links are absolute (SITE_URL) and go through the authenticated download.
    download = f"{project['env']['SITE_URL']}/api/v1/reports/{manual['report_id']}/download/"
    assert download in text_body(message)

    # 5. Beat's tick runs the schedule when it is due: move its weekly time to a
    # few seconds from now (through the API, as a user would).
    due = (datetime.now(timezone.utc) + timedelta(seconds=6)).replace(microsecond=0)
    response = api.patch(
        url, json={"weekday": due.weekday(), "time_of_day": due.strftime("%H:%M:%S")}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["next_run_at"] == due.isoformat().replace("+00:00", "Z")

    def ticked_execution() -> dict[str, Any] | None:
        runs = api.get(f"{url}executions/", timeout=10).json()["results"]
        found = [r for r in runs if r["trigger"] == "schedule"]
        if found and not {found[0]["status"], found[0]["email_status"]} & UNFINISHED:
            return found[0]
        return None

    ticked = wait_for(ticked_execution, 6 + 3 * TICK_INTERVAL + 20, "beat's run", None, *logs)
    assert ticked["due_at"] == response.json()["next_run_at"]
    assert ticked["status"] == "completed", ticked
    assert ticked["email_status"] == "sent", ticked
    assert isinstance(ticked["row_count"], int)  # last week's again (unless a week began)
    runs = api.get(f"{url}executions/", timeout=10).json()
    assert runs["count"] == 2
    assert [r["id"] for r in runs["results"]] == [ticked["id"], manual["id"]]  # newest first
    wait_for(lambda: len(messages_to(smtp, "manager@example.com")) == 2, 15, "e-mail 2", None)
    detail = api.get(url, timeout=10).json()
    assert detail["last_execution"]["id"] == ticked["id"]
    assert detail["next_run_at"] == (due + timedelta(days=7)).isoformat().replace("+00:00", "Z")

    # 6. toggle stops it: due again in a few seconds, disabled before that, and
    # no run while beat keeps ticking past its time.
    again = (datetime.now(timezone.utc) + timedelta(seconds=4)).replace(microsecond=0)
    response = api.patch(
        url,
        json={"weekday": again.weekday(), "time_of_day": again.strftime("%H:%M:%S")},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    response = api.post(f"{url}toggle/", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is False
    assert response.json()["next_run_at"] is None
    worker_log = var_dir / "worker.log"
    wait_for(lambda: datetime.now(timezone.utc) > again, 10, "the disabled run's time")
    ticks = tick_count(worker_log, TICK_DONE)
    wait_for(
        lambda: tick_count(worker_log, TICK_DONE) >= ticks + 2,
        4 * TICK_INTERVAL + 10,
        "two more ticks",
        None,
        *logs,
    )
    assert api.get(f"{url}executions/", timeout=10).json()["count"] == 2
    assert api.get(url, timeout=10).json()["enabled"] is False
    assert len(messages_to(smtp, "manager@example.com")) == 2

    # Enabled again, it waits for its next time instead of catching up.
    response = api.post(f"{url}toggle/", json={"enabled": True}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is True
    assert response.json()["next_run_at"] == (again + timedelta(days=7)).isoformat().replace(
        "+00:00", "Z"
    )


def _example_settings(tmp_path: Path, **variables: str) -> dict[str, Any]:
    """The example project's ASYNC_REPORTS, read by a fresh interpreter with ``variables`` set."""
    env = {**example_env(tmp_path / "var"), **variables}
    code = "import json, config.settings as s; print(json.dumps(s.ASYNC_REPORTS))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_example_project_mails_its_own_domain_and_posts_to_web_ports_by_default(tmp_path):
    values = _example_settings(tmp_path)
    assert values["EMAIL_ALLOWED_DOMAINS"] == [".example.com"]
    assert values["WEBHOOK_ALLOWED_PORTS"] == [80, 443]


def test_example_project_delivery_policy_from_the_environment(tmp_path):
    values = _example_settings(
        tmp_path,
        EMAIL_ALLOWED_DOMAINS="corp.example, .example.org",
        WEBHOOK_ALLOWED_PORTS="443,9000",
    )
    assert values["EMAIL_ALLOWED_DOMAINS"] == ["corp.example", ".example.org"]
    assert values["WEBHOOK_ALLOWED_PORTS"] == [443, 9000]
    anything = _example_settings(tmp_path, EMAIL_ALLOWED_DOMAINS="*", WEBHOOK_ALLOWED_PORTS="*")
    assert (anything["EMAIL_ALLOWED_DOMAINS"], anything["WEBHOOK_ALLOWED_PORTS"]) == (None, None)
