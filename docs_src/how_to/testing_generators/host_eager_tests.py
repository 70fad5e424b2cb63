"""A host project's test under ``CELERY_TASK_ALWAYS_EAGER = True`` (its test settings).

tests/test_testing_helper.py runs it in a subprocess whose settings turn eager mode on.
"""

# --8<-- [start:eager]
import datetime

from django.contrib.auth import get_user_model

from django_async_reports import services


def test_a_requested_report_runs_once_committed(db, django_capture_on_commit_callbacks):
    alice = get_user_model().objects.create_user(
        "alice", date_joined=datetime.datetime(2024, 12, 3, 12, tzinfo=datetime.timezone.utc)
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = services.request_report(
            user=alice,
            report_type="signups",
            parameters={"start_date": "2024-12-01", "end_date": "2024-12-31"},
        )

    report.refresh_from_db()
    assert report.status == "completed"
    # --8<-- [end:eager]
