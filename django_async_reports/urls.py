"""Mount with ``path("api/v1/reports/", include("django_async_reports.urls"))``."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api.reports import ReportViewSet
from .api.schedules import ScheduleViewSet

app_name = "django_async_reports"

router = SimpleRouter()
# Before the reports: their empty prefix would read "schedules" as a report id.
router.register(r"schedules", ScheduleViewSet, basename="schedule")
router.register(r"", ReportViewSet, basename="report")

urlpatterns = router.urls
