from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("django_async_reports.urls")),
    path("ops/", include("django_async_reports.ops_urls")),
    # The "My reports" page, and a login page for it (LOGIN_URL).
    path("reports/", include("django_async_reports.pages.urls")),
    path("api-auth/", include("rest_framework.urls")),
]
