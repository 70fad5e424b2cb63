"""Scheduled reports: the one code path for schedules, which the API, the admin and tasks call.

* :mod:`.validation`: :func:`validate_schedule`, every rule a schedule meets;
* :mod:`.editing`: :func:`create_schedule`, :func:`update_schedule`, :func:`set_enabled`;
* :mod:`.running`: :func:`tick` (the periodic task's), :func:`run_now`;
* :mod:`.times`: next and previous run instants in the schedule's time zone;
* :mod:`.variables`: the template variables of parameters (:data:`VARIABLES`).

A finished report's outcome is recorded on its execution by
``ScheduleExecution.objects.record_report_outcome`` (the service layer, below
this package, calls it).
"""

from __future__ import annotations

from .editing import create_schedule, set_enabled, update_schedule
from .running import run_now, tick
from .validation import EDITABLE_FIELDS, validate_parameters, validate_schedule
from .variables import VARIABLES

__all__ = [
    "EDITABLE_FIELDS",
    "VARIABLES",
    "create_schedule",
    "run_now",
    "set_enabled",
    "tick",
    "update_schedule",
    "validate_parameters",
    "validate_schedule",
]
