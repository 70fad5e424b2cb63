from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_do_not_drift():
    out = StringIO()
    try:
        call_command("makemigrations", "django_async_reports", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:  # raised when a migration is missing
        pytest.fail(f"Missing migration for django_async_reports:\n{out.getvalue()} ({exc})")
    assert "No changes detected" in out.getvalue()
