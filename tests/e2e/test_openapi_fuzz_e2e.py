"""Schemathesis over the OpenAPI document, against a live server of the test project.

Alice's token drives the fuzzing (a bounded number of examples per operation):
no answer may be a 5xx, nor break the schema of its status code, nor carry a
status code the document does not list. Bob then tries every operation on
Alice's objects over HTTP: all 404, and her objects unchanged (the IDOR
matrix, ``tests/test_idor.py`` and ``tests/e2e/test_idor_e2e.py``, covers
ownership in depth). Nothing reaches the broker (``captured_dispatches``), so
no worker is needed: the created reports stay pending.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token

from django_async_reports.models import Report, ReportSchedule

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The CLI of the interpreter running the tests (tox's venv, .venv...).
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
MAX_EXAMPLES = 30  # per operation: the run stays well under three minutes on two cores
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"


@pytest.fixture(autouse=True)
def unlimited(settings):
    """The fuzzer sends many requests: rates and caps are not what it tests (429 is
    documented anyway)."""
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "THROTTLE_RATES": None,
        "MAX_ACTIVE_REPORTS_PER_USER": 100_000,
    }


@pytest.fixture
def schema_file(tmp_path) -> Path:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(schema, default=str))
    return path


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(
    alice, live_server, schema_file, tmp_path, captured_dispatches
):
    alice.create(report_type="numbers", parameters={"count": 3})
    token = Token.objects.get(user=alice.user).key
    command = [
        *SCHEMATHESIS,
        "run",
        str(schema_file),
        "--url",
        live_server.url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        # The coverage phase enumerates every boundary of every parameter:
        # over two minutes here, so CI runs the random phases only.
        "--phases",
        "examples,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261202",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / "junit.xml"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    # Schemathesis did run every operation.
    assert "18 selected" in result.stdout or "18 total" in result.stdout, result.stdout[-3000:]
    assert Report.objects.filter(user=alice.user).count() > 1


def test_bob_gets_404_on_every_operation_on_alices_objects(alice, bob, captured_dispatches):
    report = alice.create(report_type="numbers", parameters={"count": 3})
    schedule = alice.post(
        "schedules/",
        json={"report_type": "numbers", "frequency": "daily", "parameters": {"count": 1}},
    )
    assert schedule.status_code == 201, schedule.text
    schedule_id, title = schedule.json()["id"], schedule.json()["title"]
    attempts = [
        ("get", f"{report['id']}/"),
        ("get", f"{report['id']}/progress/"),
        ("get", f"{report['id']}/download/"),
        ("post", f"{report['id']}/cancel/"),
        ("post", f"{report['id']}/regenerate/"),
        ("get", f"schedules/{schedule_id}/"),
        ("put", f"schedules/{schedule_id}/"),
        ("patch", f"schedules/{schedule_id}/"),
        ("delete", f"schedules/{schedule_id}/"),
        ("get", f"schedules/{schedule_id}/executions/"),
        ("post", f"schedules/{schedule_id}/run-now/"),
        ("post", f"schedules/{schedule_id}/toggle/"),
    ]
    for method, path in attempts:
        response = bob.session.request(method, bob.url(path), json={"title": "mine now"})
        assert response.status_code == 404, (method, path, response.text)
        assert report["id"] not in response.text and schedule_id not in response.text
    assert Report.objects.filter(user=alice.user).count() == 1
    assert Report.objects.get(pk=report["id"]).status == Report.Status.PENDING
    kept = ReportSchedule.objects.get(pk=schedule_id)
    assert (kept.owner_id, kept.enabled, kept.title) == (alice.user.pk, True, title)
    assert not Report.objects.filter(user=bob.user).exists()
