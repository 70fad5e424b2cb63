"""Settings of the django-async-reports example project.

By default nothing external is needed: every piece of state lives in files
under ``example_project/var/`` so that ``runserver``, ``celery worker`` and
``celery beat``, separate processes, share it:

* database: SQLite in WAL mode (``var/db.sqlite3``), with a busy timeout and
  ``BEGIN IMMEDIATE`` transactions so the web and the worker can both write;
* Celery broker: kombu's ``filesystem://`` transport (``var/broker/``), with the
  atomic writes of ``config/broker.py``;
* Celery results: ``file://`` (``var/results/``);
* Django cache, where workers publish report progress: ``FileBasedCache``
  (``var/cache/``);
* report files (``MEDIA_ROOT``): ``var/media/``.

Environment variables switch each piece to a real service:

=========================  ================================================================
``EXAMPLE_VAR_DIR``        Folder of the embedded state above (default ``example_project/var``).
``DATABASE_URL``           ``postgres://user:password@host:5432/dbname`` (``?sslmode=...`` etc.
                           become connection OPTIONS) or ``sqlite:////absolute/path.sqlite3``.
``CELERY_BROKER_URL``      e.g. ``amqp://guest:guest@127.0.0.1:5672//`` (RabbitMQ, AmazonMQ).
                           An ``amqps://`` URL (Amazon MQ: port 5671) verifies the broker's
                           certificate and its host name.
``CELERY_BROKER_CA_FILE``  With ``amqps://``: a PEM bundle of the CAs to trust (default: the
                           system's).
``REDIS_URL``              e.g. ``redis://127.0.0.1:6379/0``: the Django cache (report progress)
                           and the Celery result backend.
``CELERY_RESULT_BACKEND``  Overrides the result backend chosen above.
``DJANGO_SECRET_KEY``      Secret key (a fixed, insecure one by default: this is a demo).
``DJANGO_DEBUG``           ``1`` (default) or ``0``.
``DJANGO_ALLOWED_HOSTS``   Comma-separated host names (default ``*``).
``SITE_URL``               Scheme and host put before links in e-mails
                           (default ``http://localhost:8000``; ``scripts/demo.sh`` sets it
                           to the address it serves on).
``EMAIL_HOST``             SMTP server for report e-mails; unset (the default), e-mails are
                           printed by the worker (the console backend).
``EMAIL_PORT``             Its port (default 25; 587 with ``EMAIL_USE_TLS=1``, 465 with
                           ``EMAIL_USE_SSL=1`` are usual).
``EMAIL_HOST_USER``,       SMTP credentials (default: none).
``EMAIL_HOST_PASSWORD``
``EMAIL_USE_TLS``,         ``1`` for STARTTLS or for implicit TLS (default ``0``).
``EMAIL_USE_SSL``
``EMAIL_TIMEOUT``          Seconds before an SMTP connection gives up (default 10).
``DJANGO_EMAIL_BACKEND``   Any e-mail backend (overrides the two choices above).
``DEFAULT_FROM_EMAIL``     Sender of report e-mails (default ``reports@example.com``).
``SCHEDULE_TICK_INTERVAL`` Seconds between two ticks of the scheduler, which ``celery beat``
                           sends (default 60, whole seconds; the tests use 2).
``REPORTS_S3_BUCKET``      Store report files in this S3 bucket (private; downloads redirect
                           to presigned URLs) instead of ``var/media/``. Credentials come
                           from the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
                           variables or the instance's role.
``AWS_S3_ENDPOINT_URL``    An S3-compatible endpoint (MinIO, moto server...) instead of AWS.
``AWS_S3_REGION_NAME``     The bucket's region (default ``us-east-1``).
``REPORT_RETENTION_SECONDS``  How long finished reports are kept (default 7 days).
``CLEANUP_INTERVAL``       Seconds between two cleanups of expired reports (default 3600,
                           whole seconds).
``REUSE_WINDOW_SECONDS``   How long an identical request reuses a completed report
                           (default 3600; 0 disables reuse).
``WEBHOOK_ALLOWED_NETWORKS``  Comma-separated networks that webhooks may reach although
                           they are not public, e.g. ``127.0.0.0/8,::1/128`` for a receiver
                           on this machine (default: none, every non-public address is
                           refused).
``WEBHOOK_ALLOWED_PORTS``  Comma-separated ports webhook URLs may use (default ``80,443``;
                           ``*`` allows any), e.g. ``80,443,9000`` for a receiver on port 9000.
``DJANGO_SERVE_STATIC``    ``1``: the web process serves the static files (the admin's, the
                           Swagger UI's, the "My reports" page's) itself, with WhiteNoise,
                           from ``STATIC_ROOT`` (``EXAMPLE_VAR_DIR/static``), filled by
                           ``manage.py collectstatic`` beforehand (default ``0``: only
                           ``runserver`` with ``DJANGO_DEBUG=1`` serves them). The image of
                           ``deploy/`` sets it and runs ``collectstatic`` when it is built.
``EMAIL_ALLOWED_DOMAINS``  Comma-separated domains report e-mails may go to; ``.example.com``
                           also allows its subdomains (default ``.example.com``, the demo's
                           addresses; ``*`` allows any domain).
=========================  ================================================================

Every process of one deployment (web, worker, beat) must see the same values.

``celery -A config beat`` uses django-celery-beat's ``DatabaseScheduler``: its
two entries, the schedules' tick and the cleanup of expired reports, are kept
in the project's database (SQLite by default, so beat shares it with the web
server and the worker like everything else), and the beat processes of a
deployment need no schedule file of their own.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EXAMPLE_VAR_DIR") or BASE_DIR / "var").resolve()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_from_url(url: str) -> dict:
    """A ``DATABASES`` entry from ``postgres://`` or ``sqlite:///`` URL, without extra packages."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
            "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
            "CONN_HEALTH_CHECKS": True,
        }
    if scheme == "sqlite":
        # sqlite:////abs/path (four slashes) or sqlite:///relative/to/example_project
        path = unquote(parts.path)
        name = path[1:] if path.startswith("//") else path.lstrip("/")
        return _sqlite(Path(name) if Path(name).is_absolute() else BASE_DIR / name)
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported: use postgres:// or sqlite:///."
    )


def _sqlite(path: Path) -> dict:
    # WAL lets readers and one writer work at once; IMMEDIATE takes the write
    # lock at BEGIN (so the busy timeout applies instead of a deadlock error);
    # the timeout makes a writer wait for the other process instead of failing.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


# -- the embedded state folders --------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
RESULTS_DIR = VAR_DIR / "results"
CACHE_DIR = VAR_DIR / "cache"
MEDIA_ROOT = str(VAR_DIR / "media")
for _folder in (
    VAR_DIR,
    BROKER_DIR / "queue",
    BROKER_DIR / "control",
    BROKER_DIR / "processed",
    RESULTS_DIR,
    CACHE_DIR,
    Path(MEDIA_ROOT),
):
    _folder.mkdir(parents=True, exist_ok=True)

# -- Django ------------------------------------------------------------------------
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-example-project-only-never-use-in-production"
)
DEBUG = _env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and Redoc served from this project's static files, no CDN.
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_async_reports",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": _database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {"default": _sqlite(VAR_DIR / "db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The "My reports" page sends visitors who are not signed in to DRF's login page.
LOGIN_URL = "/api-auth/login/"
STATIC_ROOT = str(VAR_DIR / "static")
MEDIA_URL = "media/"  # never served: reports are downloaded through the authenticated API
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Report files: on the local disk (streamed through the authenticated
    # API) unless REPORTS_S3_BUCKET names a bucket.
    "reports": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
}
# gunicorn serves no static files: with DJANGO_SERVE_STATIC=1 (set by deploy/'s image)
# WhiteNoise serves collectstatic's output from the web process, compressed and with
# hashed names cached for a year. Off by default: nothing to collect for runserver.
SERVE_STATIC = _env_bool("DJANGO_SERVE_STATIC", False)
if SERVE_STATIC:
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
    STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
REPORTS_S3_BUCKET = os.environ.get("REPORTS_S3_BUCKET", "")
if REPORTS_S3_BUCKET:
    STORAGES["reports"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": REPORTS_S3_BUCKET,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or "us-east-1",
            # Private objects; downloads get presigned URLs minted per request.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
            "signature_version": "s3v4",
            # Path-style URLs work with any endpoint (MinIO, moto on 127.0.0.1).
            "addressing_style": "path" if os.environ.get("AWS_S3_ENDPOINT_URL") else None,
            # Without a ContentType django-storages marks .gz files Content-Encoding:
            # gzip and clients would unpack compressed reports (check W003).
            "object_parameters": {"ContentType": "application/octet-stream"},
        },
    }

# Report progress is written here by workers and read by the API: it must be
# shared by every process, hence a file cache (or Redis), never local memory.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "example",
            # A stopped Redis costs a second per call, not a hung request.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(CACHE_DIR),
        }
    }

# E-mail: printed by the worker (the console backend) unless an SMTP server is
# named. Report e-mails are sent by the worker, so it is the process that needs
# these values (set them for every process all the same).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT") or 10)
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "reports@example.com"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The seed's examples send ``Authorization: Bearer <token>``; the browsable API
# and the admin use the session.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "shop.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The OpenAPI document at /api/schema/ (docs/openapi.md).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Shop reports API",
    "DESCRIPTION": "Reports and report schedules of the example shop (django-async-reports).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a "status", and one choice set serves two fields: name
    # their enums rather than let drf-spectacular hash or pick a name.
    "ENUM_NAME_OVERRIDES": {
        "ReportStatusEnum": "django_async_reports.models.Report.Status",
        "ExecutionStatusEnum": "django_async_reports.models.ScheduleExecution.Status",
        "DeliveryStatusEnum": "django_async_reports.models.ScheduleExecution.Delivery",
    },
}


def _env_seconds(name: str, default: int, *, minimum: int = 1) -> int:
    value = os.environ.get(name) or str(default)
    try:
        seconds = int(value)
    except ValueError:
        seconds = minimum - 1
    if seconds < minimum:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of seconds >= {minimum}, not {value!r}."
        )
    return seconds


def _env_list(name: str, default: str) -> list[str] | None:
    """A comma-separated variable as a list; ``*`` means no restriction (None)."""
    value = os.environ.get(name, default).strip()
    if value == "*":
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _allowed_ports() -> list[int] | None:
    ports = _env_list("WEBHOOK_ALLOWED_PORTS", "80,443")
    if ports is None:
        return None
    try:
        return [int(port) for port in ports]
    except ValueError:
        raise ImproperlyConfigured(
            f"WEBHOOK_ALLOWED_PORTS must be port numbers separated by commas, or *, not {ports!r}."
        ) from None


def _tick_interval() -> int:
    # django-celery-beat stores intervals in whole seconds.
    value = os.environ.get("SCHEDULE_TICK_INTERVAL") or "60"
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ImproperlyConfigured(
            f"SCHEDULE_TICK_INTERVAL must be a whole number of seconds >= 1, not {value!r}."
        )
    return seconds


ASYNC_REPORTS = {
    # Progress every half second makes the demo's progress bar move visibly.
    "PROGRESS_INTERVAL": 0.5,
    "CANCEL_CHECK_INTERVAL": 0.5,
    "RETRY_COUNTDOWN": 10,
    "SOFT_TIME_LIMIT": 15 * 60,
    "RETENTION_SECONDS": _env_seconds("REPORT_RETENTION_SECONDS", 7 * 24 * 3600),
    "CLEANUP_INTERVAL": _env_seconds("CLEANUP_INTERVAL", 3600),
    "REUSE_WINDOW_SECONDS": _env_seconds("REUSE_WINDOW_SECONDS", 3600, minimum=0),
    "STORAGE": "reports",
    "EMAIL_FROM": DEFAULT_FROM_EMAIL,
    # E-mails link to the authenticated download endpoint under this address.
    "BASE_URL": os.environ.get("SITE_URL") or "http://localhost:8000",
    # How often beat sends the tick that starts the due schedules.
    "SCHEDULE_TICK_INTERVAL": _tick_interval(),
    # Webhooks only reach public addresses unless a network is listed here
    # (e.g. "127.0.0.0/8" to try them with a receiver on this machine).
    "WEBHOOK_ALLOWED_NETWORKS": [
        n.strip() for n in os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "").split(",") if n.strip()
    ],
    # ...and on these ports only ("*" in the variable: any port).
    "WEBHOOK_ALLOWED_PORTS": _allowed_ports(),
    # Report e-mails go to these domains only: the demo's addresses are all
    # @example.com. List your organisation's domains in production.
    "EMAIL_ALLOWED_DOMAINS": _env_list("EMAIL_ALLOWED_DOMAINS", ".example.com"),
    # Fair use: "urgent" is for users granted django_async_reports.request_urgent_report
    # (the demo user is), and one user's reports hold at most two worker processes.
    "PRIORITIES_WITHOUT_PERMISSION": ["low", "normal", "high"],
    "MAX_RUNNING_PER_USER": 2,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_async_reports": {"handlers": ["console"], "level": "INFO"}},
}

# -- Celery (read by config/celery.py through the CELERY_ namespace) ---------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # One folder serves as both "in" and "out": the web process writes message
    # files, the worker picks them up. Exchange bindings live in control/.
    # This transport has no message priorities: high, normal and low reports
    # are taken in arrival order; urgent ones still have their own queue, which
    # the worker serves in turn with the other, so they never wait behind it.
    # kombu's transport, but each message is renamed into the folder once
    # written: its own writes are not atomic and a worker can take a message
    # file that is still empty (config/broker.py tells the story).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.25,
    }
    # Remote control (celery inspect/control) needs queue names with dots,
    # which this transport cannot route: switch it off instead of polling for
    # nothing. Cancelling a report does not need it (the flag is in the database).
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False

elif CELERY_BROKER_URL.startswith("amqps://"):
    # TLS (Amazon MQ): py-amqp checks the certificate chain, and the host name only
    # when it is given one (docs/production/amazon-mq.md).
    CELERY_BROKER_USE_SSL = {
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": urlsplit(CELERY_BROKER_URL).hostname,
    }
    if os.environ.get("CELERY_BROKER_CA_FILE"):
        CELERY_BROKER_USE_SSL["ca_certs"] = os.environ["CELERY_BROKER_CA_FILE"]

CELERY_RESULT_BACKEND = (
    os.environ.get("CELERY_RESULT_BACKEND") or REDIS_URL or f"file://{RESULTS_DIR.as_posix()}"
)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# ``celery -A config beat``: the entries (configure_celery's tick and cleanup) live in
# the database, shared with web and worker. With ``-S celery.beat:PersistentScheduler``
# the schedule file goes under var/ instead of the current folder.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
