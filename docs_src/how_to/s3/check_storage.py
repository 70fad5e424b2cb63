"""The storage check of docs/how-to/s3.md, to run in ``manage.py shell`` on a worker."""

from typing import Any


def check_report_storage() -> dict[str, Any]:
    """Write and delete a probe file in the report storage, as the health endpoint does."""
    # --8<-- [start:check]
    from django_async_reports.health import check_storage, run_checks

    answer = run_checks({"storage": check_storage})
    print(answer["checks"]["storage"])  # {'ok': True, 'latency_ms': 41.3}
    # --8<-- [end:check]
    return answer
