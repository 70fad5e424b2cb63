import pytest
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


# -- schedules, e-mail and webhooks -------------------------------------------------
def test_schedule_and_webhook_defaults_pass():
    with override_settings(
        ASYNC_REPORTS={
            "SCHEDULE_TICK_INTERVAL": 0.5,
            "WEBHOOK_TIMEOUT": 2,
            "WEBHOOK_RETRY_BACKOFF": 0,
            "EMAIL_ATTACHMENT_MAX_BYTES": 0,  # always link, never attach
            "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8", "::1/128", "10.1.2.0/24", "fd00::/8"],
            "WEBHOOK_SECRET": "whsec_c2VjcmV0",
        }
    ):
        assert check_settings() == []


@pytest.mark.parametrize(
    "name, value",
    [
        ("SCHEDULE_TICK_INTERVAL", 0),
        ("SCHEDULE_TICK_INTERVAL", "60"),
        ("WEBHOOK_TIMEOUT", 0),
        ("WEBHOOK_TIMEOUT", -1.5),
        ("WEBHOOK_TIMEOUT", None),
        ("WEBHOOK_RETRY_BACKOFF", -1),
        ("WEBHOOK_RETRY_BACKOFF", True),
    ],
)
def test_schedule_and_webhook_numbers(name, value):
    with override_settings(ASYNC_REPORTS={name: value}):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.E002"]
    assert name in messages[0].msg


@pytest.mark.parametrize(
    "name, value",
    [
        ("SCHEDULE_BATCH_SIZE", 0),
        ("SCHEDULE_BATCH_SIZE", 0.5),  # int(0.5) would claim nothing, ever
        ("SCHEDULE_BATCH_SIZE", "500"),
        ("MAX_EMAIL_RECIPIENTS", 0),
        ("MAX_EMAIL_RECIPIENTS", True),
        ("WEBHOOK_MAX_ATTEMPTS", 0),
        ("WEBHOOK_MAX_ATTEMPTS", 2.5),
        ("EMAIL_ATTACHMENT_MAX_BYTES", -1),
        ("EMAIL_ATTACHMENT_MAX_BYTES", None),
    ],
)
def test_schedule_and_webhook_counts(name, value):
    with override_settings(ASYNC_REPORTS={name: value}):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.E012"]
    assert isinstance(messages[0], Error)
    assert name in messages[0].msg


@pytest.mark.parametrize(
    "networks, count",
    [
        ("127.0.0.0/8", 1),  # a string, not a list of them
        (None, 1),
        (["127.0.0.0/8", "localhost"], 1),
        (["10.0.0.0/33", "fe80::/129"], 2),
        ([b"10.0.0.0/8"], 1),
        ([10], 1),
    ],
)
def test_allowed_networks_must_be_a_list_of_cidr_strings(networks, count):
    with override_settings(ASYNC_REPORTS={"WEBHOOK_ALLOWED_NETWORKS": networks}):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.E013"] * count


@pytest.mark.parametrize(
    "network, everything",
    [
        ("0.0.0.0/0", True),
        ("::/0", True),
        ("8.8.8.0/24", False),
        ("10.0.0.0/7", False),  # 11.0.0.0/8 is public
        ("2001:4860::/32", False),
    ],
)
def test_allowed_networks_with_public_addresses_warn(network, everything):
    with override_settings(ASYNC_REPORTS={"WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8", network]}):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.W002"]
    assert isinstance(messages[0], Warning)
    assert network in messages[0].msg
    assert ("protection against requests into your network is off" in messages[0].msg) is (
        everything
    )


@pytest.mark.parametrize("secret", ["", "   ", 42, b"bytes"])
def test_webhook_secret_is_none_or_a_non_empty_string(secret):
    with override_settings(ASYNC_REPORTS={"WEBHOOK_SECRET": secret}):
        messages = check_settings()
    assert ids(messages) == ["django_async_reports.E014"]


def test_new_check_ids_follow_the_existing_ones_and_system_checks_run_them():
    from django.core import checks

    bad = {
        "SCHEDULE_BATCH_SIZE": 0,
        "WEBHOOK_ALLOWED_NETWORKS": ["nope", "0.0.0.0/0"],
        "WEBHOOK_SECRET": "",
    }
    with override_settings(ASYNC_REPORTS=bad):
        found = ids(m for m in checks.run_checks() if m.id.startswith("django_async_reports."))
    assert found == [
        "django_async_reports.E012",
        "django_async_reports.E013",
        "django_async_reports.E014",
        "django_async_reports.W002",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DEFAULT_FORMAT": "docx"}, ["django_async_reports.E015"]),
        ({"DEFAULT_FORMAT": "xlsx"}, []),
        ({"CLEANUP_INTERVAL": 0}, ["django_async_reports.E016"]),
        ({"CLEANUP_INTERVAL": "hourly"}, ["django_async_reports.E016"]),
        ({"CLEANUP_INTERVAL": None}, []),
        ({"DOWNLOAD_REDIRECT": "yes"}, ["django_async_reports.E016"]),
        ({"DOWNLOAD_URL_EXPIRES": 0}, ["django_async_reports.E002"]),
        ({"CLEANUP_BATCH_SIZE": 0}, ["django_async_reports.E012"]),
        ({"REUSE_WINDOW_SECONDS": -1}, ["django_async_reports.E012"]),
        ({"REUSE_WINDOW_SECONDS": 0}, []),
    ],
)
def test_format_retention_reuse_and_download_settings(overrides, expected):
    with override_settings(ASYNC_REPORTS=overrides):
        messages = check_settings()
    assert ids(messages) == expected
    assert all(isinstance(m, Error) for m in messages)


def test_default_format_whose_library_is_missing_is_an_error(monkeypatch):
    from django_async_reports.writers import get_writer_class

    writer = get_writer_class("csv")
    monkeypatch.setattr(writer, "requires", ("no_such_module_for_tests",))
    monkeypatch.setattr(writer, "extra", "csvextra")
    messages = check_settings()
    assert ids(messages) == ["django_async_reports.E015"]
    assert "django-async-reporting[csvextra]" in messages[0].hint


def test_s3_storage_without_a_content_type_warns_about_gzip_encoding(settings):
    from tests.s3_server import s3_storage_settings

    alias = s3_storage_settings("http://127.0.0.1:9", "bucket")
    settings.STORAGES = {**settings.STORAGES, "s3": alias}
    settings.ASYNC_REPORTS = {"STORAGE": "s3"}
    assert check_settings() == []  # our recommended options set a ContentType

    del alias["OPTIONS"]["object_parameters"]
    settings.STORAGES = {**settings.STORAGES, "s3": alias}
    messages = check_settings()
    assert ids(messages) == ["django_async_reports.W003"]
    assert isinstance(messages[0], Warning)
    assert "Content-Encoding: gzip" in messages[0].msg


def test_content_encoding_alone_does_not_silence_w003(settings):
    from tests.s3_server import s3_storage_settings

    alias = s3_storage_settings("http://127.0.0.1:9", "bucket")
    # django-storages still guesses (and sets) Content-Encoding without a ContentType.
    alias["OPTIONS"]["object_parameters"] = {"ContentEncoding": "identity"}
    settings.STORAGES = {**settings.STORAGES, "s3": alias}
    settings.ASYNC_REPORTS = {"STORAGE": "s3"}
    assert ids(check_settings()) == ["django_async_reports.W003"]


def test_task_results_must_be_a_boolean(settings):
    from django_async_reports.checks import check_settings

    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "TASK_RESULTS": "yes"}
    assert [m.id for m in check_settings()] == ["django_async_reports.E018"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (None, []),
        (1, []),
        (3, []),
        (9, []),
        (0, ["django_async_reports.E027"]),
        (10, ["django_async_reports.E027"]),
        (6.0, ["django_async_reports.E027"]),
        (True, ["django_async_reports.E027"]),
        ("6", ["django_async_reports.E027"]),
    ],
)
def test_gzip_level_is_none_or_1_to_9(level, expected):
    with override_settings(ASYNC_REPORTS={"GZIP_LEVEL": level}):
        messages = check_settings()
    assert ids(messages) == expected
