"""Celery configuration the host project applies from its own ``celery.py``.

The package never creates a Celery app. A host calls::

    from django_async_reports.celery_config import configure_celery

    app = Celery("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    configure_celery(app)
    app.autodiscover_tasks()

so that workers declare the report queues durable, with their priority
arguments, and start with ``-Q reports,reports_high_priority``; ``celery beat``
then sends the schedules' tick, the cleanup of expired reports and the
sweeper (three ``beat_schedule`` entries).
"""

from __future__ import annotations

from typing import Any

from kombu import Queue

from . import routing
from .conf import report_settings
from .routing import report_queues, result_options

# Task names that survive module moves.
TASK_NAMES = (
    routing.GENERATE_REPORT,
    routing.POST_PROCESS_REPORT,
    routing.SEND_REPORT_NOTIFICATION,
    routing.TICK_SCHEDULES,
    routing.SEND_SCHEDULE_FAILURE_NOTIFICATION,
    routing.DELIVER_WEBHOOK,
    routing.CLEANUP_EXPIRED_REPORTS,
    routing.SWEEP_REPORTS,
    routing.GENERATE_REPORT_PART,
    routing.ASSEMBLE_REPORT,
)

#: The tasks whose time limits come with each message (the report type's).
PER_MESSAGE_LIMITS = frozenset({routing.GENERATE_REPORT, routing.GENERATE_REPORT_PART})

#: Retries of a failed result-backend write, unless the host sets its own
#: ``result_backend_transport_options["retry_policy"]``.
RESULT_BACKEND_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}

#: The beat entries of the app: a tick that starts every due schedule, and
#: the cleanup of expired reports.
TICK_ENTRY_NAME = "django_async_reports.tick_schedules"
CLEANUP_ENTRY_NAME = "django_async_reports.cleanup_expired_reports"
SWEEP_ENTRY_NAME = "django_async_reports.sweep_reports"


def configure_celery(app: Any, *, prefetch_multiplier: int | None = 1) -> None:
    """Declare the report queues on ``app`` and route the app's tasks to them.

    Keeps the host's own ``task_queues`` (and its default queue, so its other
    tasks still run). ``prefetch_multiplier=1`` (the default) lets a worker
    reserve one message per process, which priorities need to take effect;
    pass ``None`` to leave the host's value alone. A result backend's retry
    policy is bounded (:data:`RESULT_BACKEND_RETRY_POLICY`) unless the host's
    ``result_backend_transport_options`` has one. Publisher confirms are
    turned on (``broker_transport_options["confirm_publish"]``) unless the
    host set that option: a message counts as sent once the broker has it.
    Task events (``worker_send_task_events``, ``task_send_sent_event``) are
    on unless the host set them, so Flower shows the report tasks.
    """
    if app.configured:
        _apply(app, prefetch_multiplier)
    else:
        # Reading app.conf now would load Django's settings in the middle of
        # their own import (config/__init__.py imports the Celery app): wait
        # until Celery loads its configuration.
        def on_configured(sender: Any, **kwargs: Any) -> None:
            _apply(sender, prefetch_multiplier)

        app.on_after_configure.connect(on_configured, weak=False)


def _apply(app: Any, prefetch_multiplier: int | None) -> None:
    conf = app.conf
    ours = report_queues()
    our_names = {q.name for q in ours}
    existing: list[Queue] = list(conf.task_queues or [])
    if not existing:
        existing = [Queue(conf.task_default_queue)]
    conf.task_queues = [q for q in existing if q.name not in our_names] + ours

    normal = ours[0]
    routes = {
        name: {"queue": normal.name, "routing_key": normal.routing_key} for name in TASK_NAMES
    }
    host_routes = conf.task_routes
    if host_routes is None:
        conf.task_routes = routes
    elif isinstance(host_routes, dict):
        conf.task_routes = {**routes, **host_routes}
    else:
        conf.task_routes = (routes, *tuple(host_routes))
    if prefetch_multiplier is not None:
        conf.worker_prefetch_multiplier = prefetch_multiplier
    # A result backend that is down (Redis stopped) costs a task about a second,
    # not the ~20 s of Celery's default retries per write, unless the host set
    # its own policy. The package's tasks never fail on these writes.
    transport_options = dict(conf.result_backend_transport_options or {})
    transport_options.setdefault("retry_policy", dict(RESULT_BACKEND_RETRY_POLICY))
    conf.result_backend_transport_options = transport_options
    # Without confirms a publish to a broker under a memory alarm, or one that
    # crashes before persisting, "succeeds" and the message is lost.
    broker_options = dict(conf.broker_transport_options or {})
    broker_options.setdefault("confirm_publish", True)
    conf.broker_transport_options = broker_options
    # The host's own entry of the same name, if any, wins.
    entries = {TICK_ENTRY_NAME: tick_entry()}
    for name, entry in ((CLEANUP_ENTRY_NAME, cleanup_entry()), (SWEEP_ENTRY_NAME, sweep_entry())):
        if entry is not None:
            entries[name] = entry
    conf.beat_schedule = {**entries, **(conf.beat_schedule or {})}
    _worker_safety(conf)


#: Worker settings that keep a lost broker connection from running a report
#: twice and a closed channel from stopping the worker, and that make the
#: report tasks visible in Flower (task events); a host's own value wins.
WORKER_SAFETY_DEFAULTS = {
    # The broker requeues the unacknowledged messages of a lost connection: a
    # run that went on would meet its redelivered copy on another worker.
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    # A channel closed by the broker (406 when a message outlived
    # consumer_timeout) reconnects instead of stopping the worker ("Unrecoverable
    # error") and with it every task it was running.
    "broker_channel_error_retry": True,
    # Task events, which Flower (``celery -A proj flower``) and ``celery events``
    # show: the worker sends received / started / succeeded / failed...
    "worker_send_task_events": True,
    # ...and the publisher (web process, beat, worker) sends task-sent.
    "task_send_sent_event": True,
}


def _worker_safety(conf: Any) -> None:
    """Time limits on the short tasks; :data:`WORKER_SAFETY_DEFAULTS` unless the host set them."""
    for key, value in WORKER_SAFETY_DEFAULTS.items():
        if not conf.value_set_for(key):
            conf[key] = value
    conf.task_annotations = _with_time_limits(conf.task_annotations)


def short_task_limits() -> dict[str, dict[str, float]]:
    """``task_annotations`` giving every task but the generation's its soft and hard limits.

    generate_report and generate_report_part get their limits on each message,
    per report type.
    """
    limits = {
        "soft_time_limit": report_settings.TASK_SOFT_TIME_LIMIT,
        "time_limit": report_settings.task_time_limit,
    }
    return {name: dict(limits) for name in TASK_NAMES if name not in PER_MESSAGE_LIMITS}


def _with_time_limits(host_annotations: Any) -> Any:
    """The host's ``task_annotations`` with the short tasks' limits added.

    Celery applies the first annotation that names a task, so a host dict is
    merged (its values win) and any other form keeps precedence over ours.
    """
    ours = short_task_limits()
    if host_annotations is None:
        return ours
    if isinstance(host_annotations, dict):
        merged: dict[str, Any] = dict(ours)
        for name, options in host_annotations.items():
            mine = ours.get(name)
            merged[name] = {**mine, **options} if mine and isinstance(options, dict) else options
        return merged
    if isinstance(host_annotations, (list, tuple)):
        return (*host_annotations, ours)
    return (host_annotations, ours)


def _beat_entry(task: str, interval: float, priority: int) -> dict[str, Any]:
    """A beat entry sending ``task`` every ``interval`` seconds on the normal queue.

    A message still waiting when the next one is sent expires: the next one
    does the same work.
    """
    normal = report_queues()[0]
    return {
        "task": task,
        "schedule": float(interval),
        "options": {
            "queue": normal.name,
            "exchange": normal.exchange.name,
            "routing_key": normal.routing_key,
            "priority": int(priority),
            "expires": float(interval),
            **result_options(),
        },
    }


def _priority(name: str) -> int:
    priorities = report_settings.MESSAGE_PRIORITIES
    return int(priorities.get(name, priorities.get("normal", 5)))


def tick_entry() -> dict[str, Any]:
    """The beat entry of the schedules' tick, every ``SCHEDULE_TICK_INTERVAL`` seconds.

    One entry for all schedules (beat slows down with thousands of entries).
    django-celery-beat's ``DatabaseScheduler`` imports it from ``beat_schedule``
    as a periodic task, as the default scheduler runs it. Sent ahead of
    waiting reports: a tick is short, and late runs are late reports.
    """
    interval = float(report_settings.SCHEDULE_TICK_INTERVAL)
    return _beat_entry(TICK_ENTRY_NAME, interval, _priority("urgent"))


def cleanup_entry() -> dict[str, Any] | None:
    """The beat entry deleting expired reports every ``CLEANUP_INTERVAL`` seconds, at low priority.

    None when ``CLEANUP_INTERVAL`` is None (the host runs ``cleanup_reports``
    from cron instead). With django-celery-beat's ``DatabaseScheduler`` it
    becomes a periodic task an operator can see and pause in the admin.
    """
    interval = report_settings.CLEANUP_INTERVAL
    if interval is None:
        return None
    return _beat_entry(
        CLEANUP_ENTRY_NAME, interval, int(report_settings.MESSAGE_PRIORITIES.get("low", 1))
    )


def sweep_entry() -> dict[str, Any] | None:
    """The beat entry of the sweeper, every ``SWEEP_INTERVAL`` seconds.

    It sends the messages the broker did not confirm (a report accepted while
    it was down) and takes back reports whose run was lost; ahead of waiting
    reports, since what it sends may be long overdue. None when
    ``SWEEP_INTERVAL`` is None (the host runs ``sweep_reports`` from cron).
    """
    interval = report_settings.SWEEP_INTERVAL
    if interval is None:
        return None
    return _beat_entry(SWEEP_ENTRY_NAME, interval, _priority("urgent"))
