"""The ``ASYNC_REPORTS`` settings dict, read lazily.

Modelled on ``rest_framework.settings``: one namespaced dict with documented
defaults, unknown keys rejected, import strings resolved on first use, and a
reload on ``setting_changed`` so ``override_settings`` works in tests. Settings
are never read at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTINGS_NAME = "ASYNC_REPORTS"

DEFAULTS: dict[str, Any] = {
    # Celery routing. Urgent reports go to HIGH_PRIORITY_QUEUE; the others to
    # QUEUE with a RabbitMQ message priority taken from MESSAGE_PRIORITIES.
    "QUEUE": "reports",
    "ROUTING_KEY": "reports.generate",
    "HIGH_PRIORITY_QUEUE": "reports_high_priority",
    "HIGH_PRIORITY_ROUTING_KEY": "reports.high_priority",
    "EXCHANGE": "reports",
    "MAX_PRIORITY": 10,
    "MESSAGE_PRIORITIES": {"urgent": 9, "high": 8, "normal": 5, "low": 1},
    # Retries of generate_report: attempts after the first one, and the delay.
    "MAX_RETRIES": 3,
    "RETRY_COUNTDOWN": 60,
    # A report whose worker process is lost this many times (killed, out of
    # memory: its message comes back redelivered) fails for good instead of
    # looping, since a report that kills its worker would do so forever.
    "MAX_WORKER_LOSSES": 3,
    # -- reliability -------------------------------------------------------
    # Seconds a publish may take, publisher confirm included, before it counts
    # as failed: the report then waits (pending, "Waiting for the queue") for
    # the sweeper instead of holding a web request.
    "PUBLISH_TIMEOUT": 5.0,
    # Seconds between two runs of the sweeper (a beat entry), which sends the
    # messages a process could not (broker down, process killed) and takes
    # back reports whose worker is gone. None leaves it to the
    # sweep_reports command.
    "SWEEP_INTERVAL": 60,
    # A processing report with no heartbeat (progress write) for its hard time
    # limit plus this many seconds has lost its run: the sweeper queues it again.
    "STUCK_MARGIN": 300,
    # Seconds a notification's claim holds before another run may take it
    # over (its worker died mid-delivery): at least the notification task's
    # hard time limit.
    "NOTIFY_LEASE": 600,
    # Seconds before SoftTimeLimitExceeded marks a report failed with "Timeout".
    "SOFT_TIME_LIMIT": 600,
    # Hard limit; None means SOFT_TIME_LIMIT + 60.
    "TIME_LIMIT": None,
    # Soft and hard limits of every other task (post-processing, notifications,
    # webhooks, the tick, the cleanup): a hung mail server or storage frees its
    # worker process. The soft limit fits the gzip of a ~1 GB file with room to
    # spare; None for the hard limit means TASK_SOFT_TIME_LIMIT + 60.
    "TASK_SOFT_TIME_LIMIT": 300,
    "TASK_TIME_LIMIT": None,
    # -- broker topology -------------------------------------------------------
    # "classic" or "quorum": the x-queue-type both queues are declared with.
    "QUEUE_TYPE": "classic",
    # The broker's consumer_timeout in seconds (RabbitMQ and Amazon MQ: 1800):
    # a delivered message left unacknowledged longer closes the worker's
    # channel. Countdowns and time limits are kept under it; None (no limit,
    # or unknown) turns the comparison off.
    "CONSUMER_TIMEOUT": 1800,
    # How long a finished report (and its file) is kept, in seconds; a
    # generator's ``retention`` overrides it for its type.
    "RETENTION_SECONDS": 7 * 24 * 3600,
    # Seconds between two runs of the periodic cleanup of expired reports
    # (a beat entry); None leaves cleanup to the cleanup_reports command.
    "CLEANUP_INTERVAL": 3600,
    # Expired reports deleted per transaction by the cleanup.
    "CLEANUP_BATCH_SIZE": 200,
    # -- formats -------------------------------------------------------------
    # Format of a request that names none ("csv", "xlsx", "json", "ndjson", "pdf").
    "DEFAULT_FORMAT": "csv",
    # Rows shown in the table of a PDF summary.
    "PDF_PREVIEW_ROWS": 50,
    # gzip level of compressed reports, 1-9 (zlib's scale). None: python-isal's
    # level 3 when the fast-gzip extra is installed (about 5x zlib 6's speed),
    # else zlib's 6. 1-3 use python-isal when installed; 4-9 always use zlib.
    "GZIP_LEVEL": None,
    # -- reuse of identical reports ---------------------------------------------
    # A request identical to a completed report at most this many seconds old
    # (same user, report_type, format, compression, normalised parameters)
    # returns it instead of queueing work; one still running is joined. 0 disables.
    "REUSE_WINDOW_SECONDS": 3600,
    # -- storage -------------------------------------------------------------
    # The STORAGES alias report files are written to.
    "STORAGE": "default",
    # Top-level folder of report files inside that storage.
    "STORAGE_PREFIX": "reports",
    # The orphan sweep (sweep_orphan_files) leaves alone report files younger
    # than this many seconds, even with no report row: something may store a
    # file a moment before committing its row. 0 turns the grace period off.
    "ORPHAN_GRACE_SECONDS": 3600,
    # On django-storages' S3 backend, CSV, JSON and NDJSON reports are uploaded
    # while they are written (a multipart upload, no local copy); False keeps
    # the temporary file. Parts are S3_PART_SIZE bytes (S3's minimum: 5 MiB),
    # held in memory one at a time.
    "S3_STREAMING": True,
    "S3_PART_SIZE": 8 * 1024 * 1024,
    # The COPY fast path costs a column-type query and a database connection
    # of its own: a report whose generator counts fewer rows than this takes
    # the rows path (the same bytes). 0 takes the fast path whatever the count.
    "COPY_MIN_ROWS": 2000,
    # Lifetime in seconds of the presigned URLs downloads redirect to.
    "DOWNLOAD_URL_EXPIRES": 300,
    # Redirect downloads to the storage's (presigned) URL: True, False, or
    # None to redirect when the storage has no local path (S3) and stream otherwise.
    "DOWNLOAD_REDIRECT": None,
    # The CACHES alias progress is written to (Redis in production).
    "CACHE": "default",
    "CACHE_KEY_PREFIX": "async_reports",
    "PROGRESS_CACHE_TIMEOUT": 24 * 3600,
    # Progress is written at most every PROGRESS_INTERVAL seconds, and only
    # when it moved by PROGRESS_STEP percent (always when the total is unknown).
    "PROGRESS_INTERVAL": 1.0,
    "PROGRESS_STEP": 1,
    # How often the running generator looks at the persisted cancel flag.
    "CANCEL_CHECK_INTERVAL": 1.0,
    # Store the package's task states (STARTED, PROGRESS) and return values in
    # Celery's result backend, for AsyncResult(report.celery_task_id). Off, the
    # package never touches the result backend: the row holds every report's
    # state, and a result backend that is down (Redis) costs nothing.
    "TASK_RESULTS": False,
    # Neutralise cells a spreadsheet would execute (=, +, -, @, tab, CR).
    "NEUTRALIZE_FORMULAS": True,
    # REST API.
    "PAGE_SIZE": 20,
    "MAX_PAGE_SIZE": 100,
    "RECENT_LIMIT": 10,
    # Seconds between two progress polls of the "My reports" page (per active
    # report; ten times slower while the browser tab is hidden).
    "PAGE_POLL_SECONDS": 1.0,
    "MAX_PARAMETERS_BYTES": 16 * 1024,
    "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # None keeps the host's REST_FRAMEWORK DEFAULT_AUTHENTICATION_CLASSES.
    "AUTHENTICATION_CLASSES": None,
    # E-mail sent to the requester when a report asked for it.
    "EMAIL_FROM": None,
    # Scheme and host put before links in e-mails, e.g. "https://example.com".
    "BASE_URL": None,
    # -- fair use (see docs/security.md) ---------------------------------------
    # Priorities a user without the "request_urgent_report" permission may ask
    # for; the others are refused with a field error. All four: as before.
    "PRIORITIES_WITHOUT_PERMISSION": ["low", "normal", "high", "urgent"],
    # Reports a user may have pending or processing at once; the next request
    # is a 429. None turns the cap off.
    "MAX_ACTIVE_REPORTS_PER_USER": 50,
    # Schedules a user may own; None turns the cap off.
    "MAX_SCHEDULES_PER_USER": 25,
    # Reports of one user processing at once on the workers; a claim beyond it
    # waits (pending) for the sweeper, so one user's flood never holds every
    # worker process. None (no limit: every worker process may serve one user).
    "MAX_RUNNING_PER_USER": None,
    # Seconds a 429 for too many active reports suggests waiting (Retry-After).
    "LIMIT_RETRY_AFTER": 30,
    # Request rates per user, by action ("create", "regenerate", "run_now"), in
    # DRF's notation ("60/minute"). A missing action, or None, is not throttled.
    "THROTTLE_RATES": {"create": "60/minute", "regenerate": "30/minute", "run_now": "10/minute"},
    # Shortest interval, in seconds, between two runs of a custom cron schedule.
    "MIN_CRON_INTERVAL": 300,
    # Deepest nesting of lists and objects in a request's parameters.
    "MAX_PARAMETERS_DEPTH": 5,
    # -- schedules ---------------------------------------------------------
    # Seconds between two ticks of the scheduler (one beat entry for all schedules).
    "SCHEDULE_TICK_INTERVAL": 60,
    # Schedules claimed per tick (the rest wait for the next tick).
    "SCHEDULE_BATCH_SIZE": 500,
    "MAX_EMAIL_RECIPIENTS": 20,
    # Domains report e-mails may go to: None (any), or a list where
    # "example.com" matches that domain only and ".example.com" it and every
    # subdomain (as ALLOWED_HOSTS). Checked when recipients are saved and
    # again at every send; the requester's own e-mail follows it too.
    "EMAIL_ALLOWED_DOMAINS": None,
    # Import string of a callable (address, user) -> bool deciding each
    # recipient as well (user: the schedule's owner or the requester); None: no hook.
    "EMAIL_RECIPIENT_POLICY": None,
    # Files up to this size are attached to e-mails; larger ones are linked.
    "EMAIL_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    # Seconds (1 to 604800, SigV4's limit) a presigned URL of a file too large to
    # attach stays valid; the e-mail carries it for recipients who cannot sign in.
    # S3 storages with signed URLs only. None: the download endpoint link only.
    "EMAIL_LINK_EXPIRES": None,
    # -- webhooks ----------------------------------------------------------
    "WEBHOOK_TIMEOUT": 5.0,
    "WEBHOOK_MAX_ATTEMPTS": 5,
    # Seconds before the first retry; doubled at each attempt.
    "WEBHOOK_RETRY_BACKOFF": 10,
    # Networks webhooks may reach although private/loopback ("127.0.0.0/8"
    # for tests); everything non-public is refused otherwise.
    "WEBHOOK_ALLOWED_NETWORKS": [],
    # Ports webhook URLs may use (checked when saved and at every send);
    # None allows any port.
    "WEBHOOK_ALLOWED_PORTS": [80, 443],
    # Key the secrets of ad-hoc reports' webhooks are derived from (one per
    # user, see delivery.webhooks.webhook_secret_for_user); None uses SECRET_KEY.
    "WEBHOOK_SECRET": None,
    # -- operations (docs/operations.md) ------------------------------------
    # Seconds each check of the health endpoint (database, broker, cache,
    # storage) and the metrics' broker probe may take before counting as down.
    "HEALTH_CHECK_TIMEOUT": 2.0,
    # A token the metrics endpoint requires ("Authorization: Bearer <token>");
    # None leaves protecting it to the host (an internal path, the proxy).
    "METRICS_TOKEN": None,
    # Seconds of finished reports and schedule runs the metrics' histograms,
    # failure counts and schedule lag cover (computed from the database).
    "METRICS_WINDOW": 3600,
    # The queue a dead-letter policy routes rejected report messages to (see
    # docs/celery.md); its depth is exported. None: no dead-letter metric.
    "DEAD_LETTER_QUEUE": None,
}

# Settings holding import strings (or lists of them), resolved on access.
IMPORT_STRINGS = {"PERMISSION_CLASSES", "AUTHENTICATION_CLASSES", "EMAIL_RECIPIENT_POLICY"}


def _perform_import(value: Any, setting_name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return _import(value, setting_name)
    if isinstance(value, (list, tuple)):
        return [_import(item, setting_name) if isinstance(item, str) else item for item in value]
    return value


def _import(path: str, setting_name: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Could not import {path!r} for {SETTINGS_NAME}[{setting_name!r}]: {exc}"
        ) from exc


class ReportSettings:
    """Attribute access to ``settings.ASYNC_REPORTS`` merged over ``DEFAULTS``."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            from django.conf import settings

            value = getattr(settings, SETTINGS_NAME, {}) or {}
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"settings.{SETTINGS_NAME} must be a dict.")
            unknown = sorted(set(value) - set(self.defaults))
            if unknown:
                raise ImproperlyConfigured(
                    f"Unknown key(s) in settings.{SETTINGS_NAME}: {', '.join(unknown)}. "
                    f"Valid keys: {', '.join(sorted(self.defaults))}."
                )
            self._user_settings = value
        return self._user_settings

    def as_written(self) -> Callable[[str], Any]:
        """A reader of each setting as the host wrote it (or its default), nothing imported.

        For the system checks, which report a bad value rather than trip over
        it. Raises ``ImproperlyConfigured`` when ``ASYNC_REPORTS`` itself is
        malformed (not a dict, unknown keys: check ``E001``).
        """
        written, defaults = self.user_settings, self.defaults
        return lambda name: written.get(name, defaults[name])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.defaults:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        if name in IMPORT_STRINGS:
            value = _perform_import(value, name)
        self._cached.add(name)
        setattr(self, name, value)
        return value

    @property
    def time_limit(self) -> int:
        """The hard time limit: TIME_LIMIT, or SOFT_TIME_LIMIT plus a minute."""
        return self.TIME_LIMIT if self.TIME_LIMIT is not None else self.SOFT_TIME_LIMIT + 60

    @property
    def task_time_limit(self) -> int:
        """The hard limit of the tasks other than generate_report: TASK_TIME_LIMIT,
        or TASK_SOFT_TIME_LIMIT plus a minute."""
        if self.TASK_TIME_LIMIT is not None:
            return self.TASK_TIME_LIMIT
        return self.TASK_SOFT_TIME_LIMIT + 60

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            delattr(self, "_user_settings")


#: The settings, read at call time: ``report_settings.RETENTION_SECONDS`` is
#: ``ASYNC_REPORTS["RETENTION_SECONDS"]`` or its default (reloaded by ``override_settings``).
report_settings = ReportSettings(DEFAULTS)


def _reload_report_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        report_settings.reload()


setting_changed.connect(_reload_report_settings)
