"""URLs of the example project: the reports API, the admin, DRF's login page, and the
health and metrics endpoints (/health/, /metrics/: docs/operations.md)."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/reports/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("django_async_reports.urls")),
    # Log in here to use the browsable API with a session instead of a token.
    path("api-auth/", include("rest_framework.urls")),
    # /health/ and /metrics/, without the API's authentication: on a real deployment,
    # serve them on an internal path or port only, or set ASYNC_REPORTS["METRICS_TOKEN"].
    path("", include("django_async_reports.ops_urls")),
]
