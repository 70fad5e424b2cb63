"""W050: the "My reports" page is mounted, but the API it calls does not accept a session."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register
from django.urls import NoReverseMatch, reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.settings import api_settings

from ..conf import report_settings

SESSION_AUTHENTICATION = "rest_framework.authentication.SessionAuthentication"


def page_is_mounted() -> bool:
    try:
        reverse("django_async_reports_pages:my-reports")
    except NoReverseMatch:
        return False
    return True


def api_accepts_sessions() -> bool:
    """Whether the reports API authenticates a browser's session (the page's only credential)."""
    classes = report_settings.AUTHENTICATION_CLASSES
    if classes is None:
        classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    return any(issubclass(cls, SessionAuthentication) for cls in classes)


@register(Tags.urls)
def check_page_can_call_the_api(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not page_is_mounted() or api_accepts_sessions():
        return []
    return [
        Warning(
            'The "My reports" page is mounted, but the reports API does not accept '
            "session authentication, so every call the page makes would be a 401 or 403.",
            hint=f'Add "{SESSION_AUTHENTICATION}" to REST_FRAMEWORK["DEFAULT_AUTHENTICATION_'
            'CLASSES"] (or to ASYNC_REPORTS["AUTHENTICATION_CLASSES"] when you set it).',
            id="django_async_reports.W050",
        )
    ]
