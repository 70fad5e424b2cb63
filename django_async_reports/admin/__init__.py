"""The package's admin: importing it registers a ModelAdmin for each of its models.

``django.contrib.admin`` autodiscovers ``django_async_reports.admin``; the
classes are importable from here to subclass or re-register them.
"""

from __future__ import annotations

from .history import ScheduleExecutionAdmin, WebhookDeliveryAdmin
from .reports import ReportAdmin
from .schedules import ReportScheduleAdmin

__all__ = ["ReportAdmin", "ReportScheduleAdmin", "ScheduleExecutionAdmin", "WebhookDeliveryAdmin"]
