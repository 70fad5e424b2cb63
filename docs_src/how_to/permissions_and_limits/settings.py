"""The "Permissions and limits" guide's settings block; tests/test_howto_permissions_and_limits.py
checks every key against the package's defaults and applies it."""

# --8<-- [start:settings]
ASYNC_REPORTS = {
    # Who may use the API at all: DRF permission classes (import strings).
    "PERMISSION_CLASSES": ["myapp.permissions.InReportingGroup"],
    # Reports a user may have pending or processing at once; the next is a 429.
    "MAX_ACTIVE_REPORTS_PER_USER": 5,
    # The Retry-After, in seconds, of that 429.
    "LIMIT_RETRY_AFTER": 60,
    # Reports of one user the workers run at once; the others wait, pending.
    "MAX_RUNNING_PER_USER": 2,
    # Schedules a user may own.
    "MAX_SCHEDULES_PER_USER": 10,
    # Requests per user and action, in DRF's notation.
    "THROTTLE_RATES": {"create": "20/minute", "regenerate": "10/minute", "run_now": "5/minute"},
    # "urgent" only with the django_async_reports.request_urgent_report permission.
    "PRIORITIES_WITHOUT_PERMISSION": ["low", "normal", "high"],
}
# --8<-- [end:settings]
