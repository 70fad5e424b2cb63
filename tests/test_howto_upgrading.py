"""What docs/how-to/upgrading.md states about the code, checked."""

from __future__ import annotations

import configparser
import inspect
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from django_async_reports import part_tasks, routing, tasks
from tests.helpers import ROOT

APP = "django_async_reports"


@pytest.mark.django_db
def test_every_migration_reverses_to_zero_and_applies_again():
    """``migrate django_async_reports <earlier>`` works: no migration is irreversible.

    Inside the test's transaction (PostgreSQL's DDL is transactional): rolled back after.
    """
    applied = MigrationRecorder.Migration.objects.filter(app=APP)
    latest = applied.order_by("-name").values_list("name", flat=True).first()
    assert latest is not None

    call_command("migrate", APP, "zero", stdout=StringIO())
    assert not applied.exists()
    assert "django_async_reports_report" not in connection.introspection.table_names()

    call_command("migrate", APP, stdout=StringIO())
    assert applied.order_by("-name").values_list("name", flat=True).first() == latest
    assert "django_async_reports_report" in connection.introspection.table_names()


#: Every task the package sends, with the arguments its message carries (the page's table).
MESSAGES = {
    routing.GENERATE_REPORT: (tasks.generate_report, ["report_id"]),
    routing.POST_PROCESS_REPORT: (tasks.post_process_report, ["report_id"]),
    routing.SEND_REPORT_NOTIFICATION: (tasks.send_report_notification, ["report_id"]),
    routing.GENERATE_REPORT_PART: (part_tasks.generate_report_part, ["report_id", "run", "index"]),
    routing.ASSEMBLE_REPORT: (part_tasks.assemble_report, ["report_id"]),
    routing.DELIVER_WEBHOOK: (
        tasks.deliver_webhook,
        ["report_id", "event", "message_id", "attempt"],
    ),
    routing.SEND_SCHEDULE_FAILURE_NOTIFICATION: (
        tasks.send_schedule_failure_notification,
        ["execution_id"],
    ),
    routing.TICK_SCHEDULES: (tasks.tick_schedules, []),
    routing.SWEEP_REPORTS: (tasks.sweep_reports, []),
    routing.CLEANUP_EXPIRED_REPORTS: (tasks.cleanup_expired_reports, []),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_messages_carry_a_stable_name_and_ids_only(name):
    task, arguments = MESSAGES[name]
    assert task.name == name
    parameters = [p for p in inspect.signature(task.__wrapped__).parameters if p != "self"]
    assert parameters == arguments


def test_every_task_of_the_package_is_in_the_table():
    from celery import current_app

    ours = {name for name in current_app.tasks if name.startswith("django_async_reports.")}
    assert ours == set(MESSAGES)


def test_deprecation_warnings_from_the_package_fail_its_tests():
    # pyproject.toml's [tool.pytest.ini_options] filterwarnings (tomllib is 3.11+).
    assert '"error::DeprecationWarning:django_async_reports.*"' in (
        (ROOT / "pyproject.toml").read_text()
    )
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert "-W error::DeprecationWarning:django_async_reports" in tox["testenv"]["commands"]


def test_the_package_issues_no_deprecation_warning_of_its_own_yet():
    """The page says nothing is deprecated: a first deprecation must update it."""
    sources = (ROOT / "django_async_reports").rglob("*.py")
    # A warn( call whose arguments name a DeprecationWarning (one level of parentheses).
    call = re.compile(r"warn\((?:[^()]|\([^()]*\))*DeprecationWarning")
    issuing = [p.name for p in sources if call.search(p.read_text())]
    assert issuing == []  # (silencing Django's, as broker_checks.py does, is not issuing one)
