from django.core.checks import Error, Warning
from django.test import override_settings

from django_async_reports.checks import check_settings


def ids(messages):
    return sorted(m.id for m in messages)


def test_valid_settings_pass():
    assert check_settings() == []


def test_unknown_key():
    with override_settings(ASYNC_REPORTS={"BOGUS": 1}):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.E001"]
    assert isinstance(messages[0], Error)


def test_bad_numbers_and_strings():
    with override_settings(
        ASYNC_REPORTS={"MAX_RETRIES": -1, "SOFT_TIME_LIMIT": "600", "QUEUE": ""}
    ):
        assert ids(check_settings()) == [
            "django_async_reports.E002",
            "django_async_reports.E002",
            "django_async_reports.E003",
        ]


def test_same_queue_twice():
    with override_settings(ASYNC_REPORTS={"QUEUE": "q", "HIGH_PRIORITY_QUEUE": "q"}):
        assert ids(check_settings()) == ["django_async_reports.E004"]


def test_priorities():
    with override_settings(ASYNC_REPORTS={"MAX_PRIORITY": 0}):
        assert ids(check_settings()) == ["django_async_reports.E005"]
    with override_settings(ASYNC_REPORTS={"MESSAGE_PRIORITIES": {"high": 1}}):
        assert ids(check_settings()) == ["django_async_reports.E006"]
    bad_order = {"urgent": 9, "high": 1, "normal": 5, "low": 1}
    with override_settings(ASYNC_REPORTS={"MESSAGE_PRIORITIES": bad_order}):
        assert ids(check_settings()) == ["django_async_reports.E007"]


def test_storage_and_cache_aliases():
    with override_settings(ASYNC_REPORTS={"STORAGE": "reports", "CACHE": "progress"}):
        assert ids(check_settings()) == ["django_async_reports.E008", "django_async_reports.E009"]


def test_locmem_cache_warns_outside_debug():
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=caches, DEBUG=False):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.W001"]
    assert isinstance(messages[0], Warning)


def test_bad_import_string():
    with override_settings(ASYNC_REPORTS={"AUTHENTICATION_CLASSES": ["no.such.Class"]}):
        assert ids(check_settings()) == ["django_async_reports.E010"]


def test_zero_is_refused_where_it_makes_no_sense_and_allowed_elsewhere():
    with override_settings(ASYNC_REPORTS={"PAGE_SIZE": 0, "SOFT_TIME_LIMIT": 0}):
        assert ids(check_settings()) == ["django_async_reports.E002"] * 2
    with override_settings(ASYNC_REPORTS={"MAX_RETRIES": 0, "RETRY_COUNTDOWN": 0}):
        assert check_settings() == []
