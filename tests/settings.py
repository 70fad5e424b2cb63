"""Settings for the test suite: real PostgreSQL, Redis and RabbitMQ on loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Serves the page's CSS and script in pytest-django's live_server.
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "django_async_reports",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The worker subprocesses of the end-to-end tests are told the test database's
# name through ASYNC_REPORTS_TEST_DB_NAME, since pytest-django creates it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("ASYNC_REPORTS_TEST_DB_NAME", "test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "TEST": {"NAME": os.environ.get("ASYNC_REPORTS_TEST_DB_TEST_NAME", "test_async_reports")},
    }
}

REDIS_URL = os.environ.get("ASYNC_REPORTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "async-reports-tests",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

STATIC_URL = "/static/"
LOGIN_URL = "/api-auth/login/"
MEDIA_ROOT = os.environ.get(
    "ASYNC_REPORTS_TEST_MEDIA_ROOT",
    os.path.join(tempfile.gettempdir(), "async-reports-tests-media"),
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The S3 tests' worker subprocesses get their bucket's alias (JSON) here.
if os.environ.get("ASYNC_REPORTS_TEST_S3_STORAGE"):
    STORAGES["s3"] = json.loads(os.environ["ASYNC_REPORTS_TEST_S3_STORAGE"])

EMAIL_BACKEND = os.environ.get(
    "ASYNC_REPORTS_TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend"
)
# The end-to-end tests run workers with the file-based backend writing here.
EMAIL_FILE_PATH = os.environ.get(
    "ASYNC_REPORTS_TEST_EMAIL_FILE_PATH",
    os.path.join(tempfile.gettempdir(), "async-reports-tests-mail"),
)
# The SMTP backend of the delivery tests talks to an aiosmtpd server on loopback.
EMAIL_HOST = os.environ.get("ASYNC_REPORTS_TEST_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("ASYNC_REPORTS_TEST_EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = "reports@example.com"

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tests.testapp.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}
# drf-spectacular (the openapi extra) documents the API when it is installed;
# tests/test_openapi.py runs the API with it blocked too.
if importlib.util.find_spec("drf_spectacular") is not None:
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"

# ASYNC_REPORTS_TEST_* variables let two suites share one machine's services.
QUEUE_PREFIX = os.environ.get("ASYNC_REPORTS_TEST_QUEUE_PREFIX", "test")

# Queues of their own, so a developer's demo never feeds the test workers.
ASYNC_REPORTS = {
    "QUEUE": f"{QUEUE_PREFIX}_reports",
    "HIGH_PRIORITY_QUEUE": f"{QUEUE_PREFIX}_reports_high_priority",
    # An exchange of their own too: queues bound to one shared direct exchange
    # with the same routing key would each get a copy of every message.
    "EXCHANGE": f"{QUEUE_PREFIX}_reports",
    "RETRY_COUNTDOWN": 0,
    "PROGRESS_INTERVAL": 0.2,
    "CANCEL_CHECK_INTERVAL": 0.2,
    # Most tests post the same request several times and expect as many
    # reports; the reuse tests turn reuse on (REUSE_WINDOW_SECONDS) themselves.
    "REUSE_WINDOW_SECONDS": 0,
    # The end-to-end tests read the tasks' return values (the Redis result backend);
    # tests/faults runs with it off, as a fresh install does.
    "TASK_RESULTS": True,
    # The fast path's tests read a handful of rows; tests/test_copy_fast_path.py
    # checks the default threshold (2000) on its own.
    "COPY_MIN_ROWS": 0,
}
# Extra ASYNC_REPORTS keys (JSON) for one test's worker subprocess.
ASYNC_REPORTS.update(json.loads(os.environ.get("ASYNC_REPORTS_TEST_OVERRIDES", "{}")))

CELERY_BROKER_URL = os.environ.get(
    "ASYNC_REPORTS_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"
)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False
# Extra Celery settings (JSON, names without CELERY_) for one test's worker subprocess.
for _name, _value in json.loads(
    os.environ.get("ASYNC_REPORTS_TEST_CELERY_OVERRIDES", "{}")
).items():
    globals()[f"CELERY_{_name.upper()}"] = _value

# Fast hashing: the factories create users in almost every test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
