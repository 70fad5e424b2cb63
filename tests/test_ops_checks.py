"""System checks E040-E043 and W020: the health and metrics settings."""

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings

from django_async_reports.ops_checks import check_operations_settings


def ids(messages):
    return sorted(m.id for m in messages)


def test_defaults_pass():
    with override_settings(ASYNC_REPORTS={}):
        assert check_operations_settings() == []


def test_valid_values_pass():
    settings = {
        "HEALTH_CHECK_TIMEOUT": 0.5,
        "METRICS_WINDOW": 600,
        "METRICS_TOKEN": "x" * 32,
        "DEAD_LETTER_QUEUE": "reports.dead",
    }
    with override_settings(ASYNC_REPORTS=settings):
        assert check_operations_settings() == []


@pytest.mark.parametrize(
    ("name", "bad", "expected"),
    [
        ("HEALTH_CHECK_TIMEOUT", 0, "E040"),
        ("HEALTH_CHECK_TIMEOUT", "2", "E040"),
        ("HEALTH_CHECK_TIMEOUT", None, "E040"),
        ("METRICS_WINDOW", -1, "E041"),
        ("METRICS_WINDOW", True, "E041"),
        ("METRICS_TOKEN", "", "E042"),
        ("METRICS_TOKEN", "   ", "E042"),
        ("METRICS_TOKEN", 1234, "E042"),
        ("DEAD_LETTER_QUEUE", "", "E043"),
        ("DEAD_LETTER_QUEUE", ["q"], "E043"),
    ],
)
def test_bad_values(name, bad, expected):
    with override_settings(ASYNC_REPORTS={name: bad}):
        messages = check_operations_settings()
    assert ids(messages) == [f"django_async_reports.{expected}"]
    assert isinstance(messages[0], Error)
    assert name in messages[0].msg


def test_short_token_warns():
    with override_settings(ASYNC_REPORTS={"METRICS_TOKEN": "short"}):
        messages = check_operations_settings()
    assert ids(messages) == ["django_async_reports.W020"]
    assert isinstance(messages[0], Warning)
    assert "token_urlsafe" in messages[0].hint


def test_unknown_keys_are_left_to_e001():
    with override_settings(ASYNC_REPORTS={"BOGUS": 1}):
        assert check_operations_settings() == []
