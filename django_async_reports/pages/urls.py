"""Mount with ``path("reports/", include("django_async_reports.pages.urls"))``.

The reports API must be mounted too (``include("django_async_reports.urls")``,
its ``django_async_reports`` namespace): the page calls it.
"""

from __future__ import annotations

from django.urls import path

from .views import MyReportsView

app_name = "django_async_reports_pages"

urlpatterns = [
    path("", MyReportsView.as_view(), name="my-reports"),
]
