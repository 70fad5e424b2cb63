"""Who may run what: report types (the generator's ``has_permission``) and priorities.

Every entry point asks here: the API's create, regenerate and ``types/``,
the schedules (on create, update, run-now and each scheduled run), and the
admin's retry and regenerate, which act for the report's owner.
"""

from __future__ import annotations

from typing import Any

from ..conf import report_settings
from ..exceptions import PriorityNotAllowed, ReportTypeNotAllowed
from ..registry import registry

#: The permission that lifts ``PRIORITIES_WITHOUT_PERMISSION`` ("app_label.codename").
ANY_PRIORITY_PERMISSION = "django_async_reports.request_urgent_report"


def may_run(user: Any, report_type: str) -> bool:
    """Whether ``user`` may run ``report_type`` (False for an unknown type)."""
    if report_type not in registry:
        return False
    return bool(registry.get(report_type).has_permission(user))


def runnable_types(user: Any) -> list[Any]:
    """The generator classes ``user`` may run, in registry order."""
    return [g for g in registry if g.has_permission(user)]


def check_may_run(user: Any, report_type: str) -> None:
    """Raise :class:`ReportTypeNotAllowed` unless ``user`` may run ``report_type``."""
    if report_type in registry and not may_run(user, report_type):
        raise ReportTypeNotAllowed(f'You may not run reports of type "{report_type}".')


def allowed_priorities(user: Any) -> list[str]:
    """The priorities ``user`` may ask for."""
    from ..models import Report

    if user is not None and user.has_perm(ANY_PRIORITY_PERMISSION):
        return list(Report.Priority.values)
    free = set(report_settings.PRIORITIES_WITHOUT_PERMISSION or ())
    return [p for p in Report.Priority.values if p in free]


def may_ask_for(user: Any, priority: str) -> bool:
    """Whether ``user`` may ask for ``priority`` (the permission is read only when needed)."""
    if priority in (report_settings.PRIORITIES_WITHOUT_PERMISSION or ()):
        return True
    return user is not None and user.has_perm(ANY_PRIORITY_PERMISSION)


def check_priority(user: Any, priority: str) -> None:
    """Raise :class:`PriorityNotAllowed` unless ``user`` may ask for ``priority``."""
    if not may_ask_for(user, priority):
        raise PriorityNotAllowed(f'You may not ask for "{priority}" priority.')
