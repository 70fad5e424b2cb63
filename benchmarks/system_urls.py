"""URLs of ``system.py``'s server: the test project's, plus a trivial DRF view to compare with."""

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_async_reports.api.base import AsyncReportsViewMixin
from tests.urls import urlpatterns as test_urlpatterns

TRIVIAL_PATH = "bench/trivial/"


class TrivialView(AsyncReportsViewMixin, APIView):
    """A small dict behind the reports API's authentication, permission and throttle classes.

    ``AsyncReportsViewMixin`` is what gives the package's viewsets those classes,
    so the difference to the progress endpoint is the endpoint's own work.
    """

    def get(self, request: Request) -> Response:
        return Response({"id": "0", "status": "processing", "progress": 50, "message": "Trivial"})


urlpatterns = [*test_urlpatterns, path(TRIVIAL_PATH, TrivialView.as_view())]
