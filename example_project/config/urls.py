"""URLs of the example project: the reports API, its OpenAPI document, the admin, DRF's
login page, and the health and metrics endpoints (/health/, /metrics/: docs/operations.md)."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/reports/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("django_async_reports.urls")),
    # The "My reports" page (docs/pages.md); it calls the API above with the session.
    path("reports/", include("django_async_reports.pages.urls")),
    # Log in here to use the browsable API with a session instead of a token.
    path("api-auth/", include("rest_framework.urls")),
    # The OpenAPI document, and two readers of it (docs/openapi.md).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # /health/ and /metrics/, without the API's authentication: on a real deployment,
    # serve them on an internal path or port only, or set ASYNC_REPORTS["METRICS_TOKEN"].
    path("", include("django_async_reports.ops_urls")),
]
