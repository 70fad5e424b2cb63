"""The health and metrics endpoints, apart from the API: mount them on an internal path.

``path("ops/", include("django_async_reports.ops_urls"))`` serves
``ops/health/`` and ``ops/metrics/``. Neither uses the API's authentication:
load balancers and Prometheus call them without a user. See docs/operations.md.
"""

from __future__ import annotations

from django.urls import path

from .health import health_view
from .metrics import metrics_view

app_name = "django_async_reports_ops"

urlpatterns = [
    path("health/", health_view, name="health"),
    path("metrics/", metrics_view, name="metrics"),
]
