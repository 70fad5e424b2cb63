"""tests.urls without the "My reports" page (check W050 is then silent)."""

from django.urls import include, path

urlpatterns = [path("api/v1/reports/", include("django_async_reports.urls"))]
