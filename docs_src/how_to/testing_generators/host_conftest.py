"""A host project's conftest.py: enables the package's ``run_report`` fixture."""

# --8<-- [start:plugins]
pytest_plugins = ["django_async_reports.testing"]
# --8<-- [end:plugins]
