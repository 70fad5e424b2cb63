"""The receiving project's URLs of docs/how-to/email-and-webhooks.md."""

# --8<-- [start:urls]
from django.urls import path

from .views import report_webhook

urlpatterns = [
    path("hooks/reports/", report_webhook, name="report-webhook"),
]
# --8<-- [end:urls]
