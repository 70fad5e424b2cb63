import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.permissions import AllowAny, IsAuthenticated

from django_async_reports.conf import DEFAULTS, report_settings


def test_default_when_not_overridden():
    # tests/settings.py leaves MAX_RETRIES alone.
    assert report_settings.MAX_RETRIES == DEFAULTS["MAX_RETRIES"] == 3
    assert report_settings.SOFT_TIME_LIMIT == 600
    assert settings.ASYNC_REPORTS["QUEUE"] == report_settings.QUEUE  # overridden by the tests


def test_override_and_revert():
    with override_settings(ASYNC_REPORTS={"MAX_RETRIES": 7}):
        assert report_settings.MAX_RETRIES == 7
        assert report_settings.QUEUE == "reports"  # the default again: a new dict replaces
    assert report_settings.MAX_RETRIES == 3
    assert settings.ASYNC_REPORTS["QUEUE"] == report_settings.QUEUE


def test_unknown_key_is_rejected_with_the_valid_ones():
    with (
        override_settings(ASYNC_REPORTS={"QEUE": "x"}),
        pytest.raises(ImproperlyConfigured, match=r"QEUE.*Valid keys"),
    ):
        report_settings.QUEUE  # noqa: B018


def test_import_strings_resolved_lazily():
    assert [IsAuthenticated] == report_settings.PERMISSION_CLASSES
    with override_settings(
        ASYNC_REPORTS={"PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    ):
        assert [AllowAny] == report_settings.PERMISSION_CLASSES
    with (
        override_settings(ASYNC_REPORTS={"PERMISSION_CLASSES": ["nope.Missing"]}),
        pytest.raises(ImproperlyConfigured, match=r"nope\.Missing"),
    ):
        report_settings.PERMISSION_CLASSES  # noqa: B018


def test_time_limit_defaults_to_soft_limit_plus_a_minute():
    assert report_settings.time_limit == 660
    with override_settings(ASYNC_REPORTS={"TIME_LIMIT": 30, "SOFT_TIME_LIMIT": 20}):
        assert report_settings.time_limit == 30


def test_invalid_attribute():
    with pytest.raises(AttributeError):
        report_settings.NOT_A_SETTING  # noqa: B018
