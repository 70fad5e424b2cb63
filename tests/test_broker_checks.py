"""System checks of the broker topology (django_async_reports.broker_checks)."""

import pytest
from django.core import checks
from django.core.checks import Error, Warning
from django.test import override_settings

from django_async_reports import register, registry
from django_async_reports.broker_checks import (
    check_accepted_content,
    check_broker_topology,
)
from tests.testapp.reports import NumbersReport

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def ids(messages):
    return sorted(m.id for m in messages)


def with_settings(base, **changes):
    return override_settings(ASYNC_REPORTS={**base, **changes})


@pytest.fixture
def base(settings):
    return dict(settings.ASYNC_REPORTS)


def test_the_test_settings_and_the_defaults_pass(base):
    assert check_broker_topology() == []
    with override_settings(ASYNC_REPORTS={}):
        assert check_broker_topology() == []
    # Registered with Django's framework, next to checks.py's.
    assert [m for m in checks.run_checks() if m.id.startswith("django_async_reports.")] == []


@pytest.mark.parametrize("queue_type", ["Quorum", "stream", None, 1])
def test_queue_type_is_classic_or_quorum(base, queue_type):
    with with_settings(base, QUEUE_TYPE=queue_type):
        messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.E019"]


def test_quorum_is_accepted(base):
    with with_settings(base, QUEUE_TYPE="quorum"):
        assert check_broker_topology() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"CONSUMER_TIMEOUT": 0},
        {"CONSUMER_TIMEOUT": "1800"},
        {"CONSUMER_TIMEOUT": True},
        {"TASK_SOFT_TIME_LIMIT": 0},
        {"TASK_SOFT_TIME_LIMIT": None},
        {"TASK_TIME_LIMIT": 300},  # not above the soft limit (300)
        {"TASK_TIME_LIMIT": "360"},
    ],
)
def test_limit_settings_are_seconds(base, changes):
    with with_settings(base, **changes):
        messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.E020"]
    assert next(iter(changes)) in messages[0].msg


def test_no_consumer_timeout_turns_the_comparison_off(base):
    with with_settings(
        base,
        CONSUMER_TIMEOUT=None,
        SOFT_TIME_LIMIT=7200,
        TASK_SOFT_TIME_LIMIT=3600,
        NOTIFY_LEASE=3700,  # outlives the notification task (E023)
    ):
        assert check_broker_topology() == []


def test_a_report_run_longer_than_consumer_timeout_is_an_error(base):
    # 1700 + 60 (hard) + 60 (RETRY_COUNTDOWN) + 60 (margin) = 1880 > 1800
    with with_settings(base, SOFT_TIME_LIMIT=1700, RETRY_COUNTDOWN=60):
        messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.E021"]
    assert isinstance(messages[0], Error)
    assert "generate_report (SOFT_TIME_LIMIT)" in messages[0].msg
    assert "1880 s" in messages[0].msg
    assert "RETRY_COUNTDOWN 60 s + hard time limit 1760 s" in messages[0].msg
    # Exactly at the limit fits.
    with with_settings(base, SOFT_TIME_LIMIT=1620, RETRY_COUNTDOWN=60):
        assert check_broker_topology() == []


def test_retry_countdown_counts(base):
    with with_settings(base, SOFT_TIME_LIMIT=600, RETRY_COUNTDOWN=1100):
        assert ids(check_broker_topology()) == ["django_async_reports.E021"]
    with with_settings(base, SOFT_TIME_LIMIT=600, TIME_LIMIT=1800, RETRY_COUNTDOWN=0):
        assert ids(check_broker_topology()) == ["django_async_reports.E021"]


def test_a_generator_soft_time_limit_counts_with_its_hard_limit(base):
    @register
    class Long(NumbersReport):
        report_type = "long_for_checks"
        soft_time_limit = 1750  # + 60 hard, + RETRY_COUNTDOWN 0, + 60 margin = 1870

    try:
        with with_settings(base, RETRY_COUNTDOWN=0):
            messages = check_broker_topology()
        assert ids(messages) == ["django_async_reports.E021"]
        assert "report type 'long_for_checks'" in messages[0].msg
        assert "hard time limit 1810 s" in messages[0].msg
        # The broker's timeout raised, and the setting with it: fine.
        with with_settings(base, RETRY_COUNTDOWN=0, CONSUMER_TIMEOUT=3600):
            assert check_broker_topology() == []
    finally:
        registry.unregister("long_for_checks")


def test_the_short_tasks_hard_limit_counts(base):
    # 300 (longest step retry) + 1500 (hard) + 60 (margin) > 1800
    lease = {"NOTIFY_LEASE": 1600}  # outlives the notification task (E023)
    with with_settings(base, TASK_SOFT_TIME_LIMIT=1400, TASK_TIME_LIMIT=1500, **lease):
        messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.E021"]
    assert "post-processing, notifications, webhooks" in messages[0].msg
    with with_settings(base, TASK_SOFT_TIME_LIMIT=1400, CONSUMER_TIMEOUT=3600, **lease):
        assert check_broker_topology() == []


def test_email_timeout_with_the_smtp_backend(base, settings):
    settings.EMAIL_BACKEND = SMTP
    settings.EMAIL_TIMEOUT = None
    messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.W004"]
    assert isinstance(messages[0], Warning)
    settings.EMAIL_TIMEOUT = 300  # not under the tasks' soft limit: the limit ends it first
    assert ids(check_broker_topology()) == ["django_async_reports.W004"]
    settings.EMAIL_TIMEOUT = 30
    assert check_broker_topology() == []
    # Other backends (locmem, anymail...) have no SMTP socket to hang on.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_TIMEOUT = None
    assert check_broker_topology() == []


def test_with_mailers_each_smtp_mailer_needs_a_timeout(settings):
    # Django 6.1's MAILERS: the timeout is an OPTION of each SMTP mailer.
    settings.MAILERS = {
        "default": {"BACKEND": SMTP, "OPTIONS": {"host": "smtp.example.com"}},
        "bulk": {"BACKEND": SMTP, "OPTIONS": {"timeout": 10}},
        "tests": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    }
    messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.W004"]
    assert messages[0].obj == 'MAILERS["default"]["OPTIONS"]["timeout"]'
    settings.MAILERS["default"]["OPTIONS"]["timeout"] = 30
    assert check_broker_topology() == []


@pytest.mark.parametrize(
    "content",
    [
        {"accept_content": ["json", "pickle"]},
        {"accept_content": ("application/x-python-serialize",)},
        {"result_accept_content": ["application/x-yaml"]},
        {"task_serializer": "pickle"},
        {"result_serializer": "YAML"},
        {"CELERY_ACCEPT_CONTENT": ["yaml"]},
    ],
)
def test_pickle_and_yaml_are_refused(content):
    messages = check_accepted_content(content)
    assert ids(messages) == ["django_async_reports.E022"]
    assert next(iter(content)) in messages[0].msg


def test_json_and_msgpack_are_accepted():
    assert (
        check_accepted_content(
            {
                "accept_content": ["json", "application/json", "msgpack"],
                "result_accept_content": None,
                "task_serializer": "json",
                "result_serializer": "msgpack",
            }
        )
        == []
    )


def test_the_accepted_content_is_read_from_the_celery_app_and_django_settings(settings):
    from celery import current_app

    conf = current_app.conf
    saved = conf.accept_content
    conf.accept_content = ["json", "pickle"]
    try:
        messages = check_broker_topology()
    finally:
        conf.accept_content = saved
    assert ids(messages) == ["django_async_reports.E022"]
    assert "accept_content: pickle" in messages[0].msg

    settings.CELERY_RESULT_ACCEPT_CONTENT = ["json", "yaml"]
    messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.E022"]
    assert "CELERY_RESULT_ACCEPT_CONTENT: yaml" in messages[0].msg


@pytest.mark.parametrize(
    "changes",
    [
        {"PUBLISH_TIMEOUT": 0},
        {"STUCK_MARGIN": "300"},
        {"NOTIFY_LEASE": None},
        {"SWEEP_INTERVAL": 0},
    ],
)
def test_the_outbox_timings_are_seconds(base, changes):
    with with_settings(base, **changes):
        messages = check_broker_topology()
    assert ids(messages) == ["django_async_reports.E023"]
    assert next(iter(changes)) in messages[0].msg


def test_no_sweep_interval_is_allowed(base):
    with with_settings(base, SWEEP_INTERVAL=None):
        assert check_broker_topology() == []


def test_a_notification_lease_shorter_than_its_task_is_an_error(base):
    with with_settings(base, NOTIFY_LEASE=300, TASK_SOFT_TIME_LIMIT=300, TASK_TIME_LIMIT=None):
        [message] = check_broker_topology()
    assert message.id == "django_async_reports.E023"
    assert "360 s" in message.msg and "sent twice" in message.hint
