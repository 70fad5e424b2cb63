"""URLs of the example project: the reports API, the admin and DRF's login page."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/reports/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("django_async_reports.urls")),
    # Log in here to use the browsable API with a session instead of a token.
    path("api-auth/", include("rest_framework.urls")),
]
