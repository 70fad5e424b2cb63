"""A fresh ``django-admin startproject`` host installs the built wheel and runs reports.

Runs scripts/check_host_project.sh: wheel built outside the repository,
installed non-editable in a new virtualenv, a generator registered through
the public API, a real worker on RabbitMQ (own vhost), PostgreSQL (own
database) and Redis, driven over HTTP. This is the check that caught the
registry/autodiscovery start-up bug, so it runs with the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON_312 = Path("/root/.pyenv/versions/3.12.1/bin/python")

pytestmark = pytest.mark.e2e


def test_fresh_host_project_over_http():
    # The host is a project of its own: none of the suite's Django settings.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"} and not k.startswith("ASYNC_REPORTS")
    }
    if "HOST_CHECK_PYTHON" in os.environ:
        env["PYTHON"] = os.environ["HOST_CHECK_PYTHON"]
    elif PYTHON_312.exists():
        env["PYTHON"] = str(PYTHON_312)
    else:  # Django 6 needs Python 3.12+: fall back to 5.2 LTS on this interpreter.
        env["PYTHON"] = sys.executable
        env["DJANGO_SPEC"] = "Django>=5.2,<6.0"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_host_project.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, tail
    assert "RESULT: PASS" in result.stdout, tail
    assert "ALL HTTP CHECKS PASSED" in result.stdout, tail
