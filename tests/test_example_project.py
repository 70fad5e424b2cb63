"""The example project, run as a user runs it: its own settings, in subprocesses.

Checks and migrations first; then a migrated, seeded project in a temporary
``EXAMPLE_VAR_DIR`` with a real Celery worker on the embedded file-system
broker and ``runserver`` on a free port, and every report type requested,
followed and downloaded over HTTP with the Bearer token, as the seed's usage
example does. No external service is involved: the environment variables
that would switch to PostgreSQL, RabbitMQ or Redis are removed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "example_project"
EXTERNAL_SERVICE_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_DEBUG",
)
SEED_ORDERS = 5000  # more than one 2000-row chunk, so keyset pagination is exercised
SEED_CUSTOMERS = 300
STARTUP_TIMEOUT = 30.0
REPORT_TIMEOUT = 30.0


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


def test_models_and_migrations_do_not_drift(tmp_path):
    manage(example_env(tmp_path), "makemigrations", "--check", "--dry-run")


def test_seed_is_idempotent_and_deterministic(tmp_path):
    env = example_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v", "0")
    digest_code = (
        "import hashlib, json; from shop.models import Order; h = hashlib.sha256(); "
        "[h.update(repr(r).encode()) for r in Order.objects.order_by('created_at', 'pk')"
        ".values_list('customer__email', 'product__sku', 'created_at', 'quantity', 'total',"
        " 'status', 'region')]; "
        "print(json.dumps([Order.objects.count(), h.hexdigest()]))"
    )
    manage(env, "seed_demo_data", "--orders", "300")
    first = shell_json(env, digest_code)
    assert first[0] == 300

    out = manage(env, "seed_demo_data", "--orders", "300")
    assert "already present" in out
    assert shell_json(env, digest_code) == first

    manage(env, "seed_demo_data", "--orders", "300", "--reset")
    assert shell_json(env, digest_code) == first

    manage(env, "seed_demo_data", "--orders", "300", "--reset", "--seed", "7")
    assert shell_json(env, digest_code) != first


# -- the running project -------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict[str, Any]:
    """A migrated, seeded project with its demo user's token and the counts to expect."""
    var_dir = tmp_path_factory.mktemp("example-var")
    env = example_env(var_dir)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "seed_demo_data",
        "--orders",
        str(SEED_ORDERS),
        "--customers",
        str(SEED_CUSTOMERS),
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
    return {"env": env, "var_dir": var_dir, "token": token, "expected": expected}


@pytest.fixture(scope="module")
def server(project) -> Iterator[str]:
    """A Celery worker and ``runserver``, started as the demo does; yields the base URL."""
    env, var_dir = project["env"], project["var_dir"]
    worker_log, web_log = var_dir / "worker.log", var_dir / "web.log"
    port = free_port()
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
