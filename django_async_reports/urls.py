"""Mount with ``path("api/v1/reports/", include("django_async_reports.urls"))``."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .views import ReportViewSet

app_name = "django_async_reports"

router = SimpleRouter()
router.register(r"", ReportViewSet, basename="report")

urlpatterns = router.urls
