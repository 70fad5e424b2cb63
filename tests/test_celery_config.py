from celery import Celery
from django.conf import settings
from kombu import Queue

from django_async_reports.celery_config import TASK_NAMES, configure_celery


def make_app(**conf):
    app = Celery("t", set_as_current=False)
    app.conf.update(broker_url="memory://", **conf)
    return app


def queues_by_name(app):
    return {q.name: q for q in app.conf.task_queues}


def test_declares_durable_priority_queues_and_keeps_the_default_queue():
    app = make_app()
    configure_celery(app)
    queues = queues_by_name(app)
    assert set(queues) == {
        "celery",
        settings.ASYNC_REPORTS["QUEUE"],
        settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"],
    }
    normal = queues[settings.ASYNC_REPORTS["QUEUE"]]
    assert normal.durable
    assert normal.queue_arguments == {"x-queue-type": "classic", "x-max-priority": 10}
    assert normal.routing_key == "reports.generate"
    assert (
        normal.exchange.name == settings.ASYNC_REPORTS["EXCHANGE"]
        and normal.exchange.type == "direct"
    )
    assert queues[settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"]].queue_arguments == {
        "x-queue-type": "classic",
        "x-max-priority": 10,
    }
    assert app.conf.worker_prefetch_multiplier == 1
    for name in TASK_NAMES:
        assert app.conf.task_routes[name]["queue"] == settings.ASYNC_REPORTS["QUEUE"]


def test_default_names_match_the_documented_worker_command(settings):
    settings.ASYNC_REPORTS = {}
    app = make_app()
    configure_celery(app)
    # `celery worker -Q reports,reports_high_priority` consumes every task of the app.
    assert {"reports", "reports_high_priority"} <= set(queues_by_name(app))
    assert {r["queue"] for r in app.conf.task_routes.values()} == {"reports"}


def test_keeps_host_queues_routes_and_prefetch_when_asked():
    app = make_app(
        task_queues=[Queue("emails")],
        task_routes={"proj.send": {"queue": "emails"}},
        worker_prefetch_multiplier=8,
    )
    configure_celery(app, prefetch_multiplier=None)
    assert "emails" in queues_by_name(app)
    assert app.conf.task_routes["proj.send"] == {"queue": "emails"}
    assert app.conf.worker_prefetch_multiplier == 8


def test_waits_for_the_configuration_when_called_before_it_loads():
    app = Celery("late", set_as_current=False)
    configure_celery(app)  # nothing read yet
    assert not app.configured
    app.config_from_object({"broker_url": "memory://"})
    assert settings.ASYNC_REPORTS["QUEUE"] in queues_by_name(app)


def test_tick_schedules_is_one_beat_entry_on_the_reports_queue():
    app = make_app()
    configure_celery(app)
    assert "django_async_reports.tick_schedules" in TASK_NAMES
    assert set(app.conf.beat_schedule) == {
        "django_async_reports.tick_schedules",
        "django_async_reports.cleanup_expired_reports",
        "django_async_reports.sweep_reports",
    }
    entry = app.conf.beat_schedule["django_async_reports.tick_schedules"]
    assert entry["task"] == "django_async_reports.tick_schedules"
    assert entry["schedule"] == 60.0
    assert entry["options"] == {
        "queue": settings.ASYNC_REPORTS["QUEUE"],
        "exchange": settings.ASYNC_REPORTS["EXCHANGE"],
        "routing_key": "reports.generate",
        "priority": 9,
        "expires": 60.0,
        "ignore_result": False,  # tests/settings.py turns TASK_RESULTS on
    }
    assert app.conf.task_routes["django_async_reports.tick_schedules"] == {
        "queue": settings.ASYNC_REPORTS["QUEUE"],
        "routing_key": "reports.generate",
    }


def test_tick_interval_follows_the_setting(settings):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "SCHEDULE_TICK_INTERVAL": 15}
    app = make_app()
    configure_celery(app)
    entry = app.conf.beat_schedule["django_async_reports.tick_schedules"]
    assert entry["schedule"] == 15.0
    assert entry["options"]["expires"] == 15.0


def test_keeps_the_host_beat_schedule_and_its_own_tick_entry():
    host_entry = {"task": "proj.cleanup", "schedule": 3600.0}
    custom_tick = {"task": "django_async_reports.tick_schedules", "schedule": 30.0}
    app = make_app(beat_schedule={"proj.cleanup": host_entry})
    configure_celery(app)
    assert app.conf.beat_schedule["proj.cleanup"] == host_entry
    assert "django_async_reports.tick_schedules" in app.conf.beat_schedule

    app = make_app(beat_schedule={"django_async_reports.tick_schedules": custom_tick})
    configure_celery(app)
    assert app.conf.beat_schedule["django_async_reports.tick_schedules"] == custom_tick
    assert set(app.conf.beat_schedule) == {
        "django_async_reports.tick_schedules",
        "django_async_reports.cleanup_expired_reports",
        "django_async_reports.sweep_reports",
    }


def test_every_task_of_the_package_is_routed():
    """A task missing from TASK_NAMES would go to the host's default queue."""
    from celery import Task

    from django_async_reports import part_tasks, tasks

    names = {
        value.name
        for module in (tasks, part_tasks)
        for value in vars(module).values()
        if isinstance(value, Task) and value.name.startswith("django_async_reports.")
    }
    assert names == set(TASK_NAMES)


def test_cleanup_is_a_low_priority_beat_entry_every_cleanup_interval(settings):
    app = make_app()
    configure_celery(app)
    entry = app.conf.beat_schedule["django_async_reports.cleanup_expired_reports"]
    assert entry["task"] == "django_async_reports.cleanup_expired_reports"
    assert entry["task"] in TASK_NAMES
    assert entry["schedule"] == 3600.0
    assert entry["options"]["queue"] == settings.ASYNC_REPORTS["QUEUE"]
    assert entry["options"]["priority"] == 1

    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "CLEANUP_INTERVAL": 120}
    app = make_app()
    configure_celery(app)
    assert (
        app.conf.beat_schedule["django_async_reports.cleanup_expired_reports"]["schedule"] == 120.0
    )

    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "CLEANUP_INTERVAL": None}
    app = make_app()
    configure_celery(app)
    assert set(app.conf.beat_schedule) == {
        "django_async_reports.tick_schedules",
        "django_async_reports.sweep_reports",
    }


def test_the_sweeper_is_an_urgent_beat_entry_every_sweep_interval(settings):
    app = make_app()
    configure_celery(app)
    entry = app.conf.beat_schedule["django_async_reports.sweep_reports"]
    assert entry["task"] == "django_async_reports.sweep_reports"
    assert (entry["schedule"], entry["options"]["expires"]) == (60.0, 60.0)
    assert entry["options"]["queue"] == settings.ASYNC_REPORTS["QUEUE"]
    assert entry["options"]["priority"] == 9  # ahead of the reports it may be sending

    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "SWEEP_INTERVAL": None}
    app = make_app()
    configure_celery(app)
    assert "django_async_reports.sweep_reports" not in app.conf.beat_schedule


def test_publisher_confirms_are_on_unless_the_host_chose():
    app = make_app(broker_transport_options={"max_retries": 2})
    configure_celery(app)
    assert app.conf.broker_transport_options == {"max_retries": 2, "confirm_publish": True}
    app = make_app(broker_transport_options={"confirm_publish": False})
    configure_celery(app)
    assert app.conf.broker_transport_options == {"confirm_publish": False}


def test_task_names_are_the_published_ones():
    """Messages already queued name these tasks: a rename would strand them."""
    assert set(TASK_NAMES) == {
        "django_async_reports.generate_report",
        "django_async_reports.post_process_report",
        "django_async_reports.send_report_notification",
        "django_async_reports.tick_schedules",
        "django_async_reports.send_schedule_failure_notification",
        "django_async_reports.deliver_webhook",
        "django_async_reports.cleanup_expired_reports",
        "django_async_reports.sweep_reports",
        "django_async_reports.generate_report_part",
        "django_async_reports.assemble_report",
    }


def test_bounds_the_result_backends_retries_unless_the_host_chose():
    from django_async_reports.celery_config import RESULT_BACKEND_RETRY_POLICY

    app = make_app(result_backend_transport_options={"visibility_timeout": 60})
    configure_celery(app)
    assert app.conf.result_backend_transport_options == {
        "visibility_timeout": 60,
        "retry_policy": RESULT_BACKEND_RETRY_POLICY,
    }
    mine = {"max_retries": 5}
    app = make_app(result_backend_transport_options={"retry_policy": mine})
    configure_celery(app)
    assert app.conf.result_backend_transport_options == {"retry_policy": mine}


def test_without_task_results_nothing_is_asked_of_the_result_backend(settings, monkeypatch):
    """The default: messages (and beat's) ignore results, so publishing never needs Redis."""
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "TASK_RESULTS": False}
    app = make_app()
    configure_celery(app)
    for entry in app.conf.beat_schedule.values():
        assert entry["options"]["ignore_result"] is True

    from django_async_reports import routing

    sent = []
    monkeypatch.setattr(
        routing.current_app.tasks[routing.DELIVER_WEBHOOK],
        "apply_async",
        lambda args=None, **options: sent.append(options),
    )
    routing.send_task(routing.DELIVER_WEBHOOK, ["r", "e", "m", 1], priority="normal")
    assert sent[0]["ignore_result"] is True


# -- broker topology ------------------------------------------------------------------
def test_quorum_queues_are_declared_without_x_max_priority(settings):
    """RabbitMQ 3.x refuses x-max-priority on quorum queues (``invalid arg``)."""
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "QUEUE_TYPE": "quorum"}
    app = make_app()
    configure_celery(app)
    for name in (settings.ASYNC_REPORTS["QUEUE"], settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"]):
        queue = queues_by_name(app)[name]
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.durable


def test_worker_safety_defaults_unless_the_host_set_them():
    app = make_app()
    configure_celery(app)
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert app.conf.broker_channel_error_retry is True

    app = make_app(
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_channel_error_retry=False,
    )
    configure_celery(app)
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False
    assert app.conf.broker_channel_error_retry is False


def test_the_host_setting_a_worker_safety_key_through_django_settings_wins(settings):
    settings.CELERY_BROKER_CHANNEL_ERROR_RETRY = False
    app = Celery("django-settings", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    configure_celery(app)
    assert app.conf.broker_channel_error_retry is False
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True


def test_task_events_are_on_for_flower_unless_the_host_set_them(settings):
    app = make_app()
    configure_celery(app)
    assert app.conf.worker_send_task_events is True
    assert app.conf.task_send_sent_event is True

    # Off, explicitly: the host's choice stays.
    app = make_app(worker_send_task_events=False, task_send_sent_event=False)
    configure_celery(app)
    assert app.conf.worker_send_task_events is False
    assert app.conf.task_send_sent_event is False

    # Through Django's settings (CELERY_ namespace), as a host project sets them.
    settings.CELERY_WORKER_SEND_TASK_EVENTS = False
    app = Celery("django-settings-events", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    configure_celery(app)
    assert app.conf.worker_send_task_events is False
    assert app.conf.task_send_sent_event is True


SHORT_TASKS = set(TASK_NAMES) - {
    "django_async_reports.generate_report",
    "django_async_reports.generate_report_part",
}


def test_every_task_but_generate_report_gets_the_task_time_limits(settings):
    app = make_app()
    configure_celery(app)
    for name in SHORT_TASKS:
        assert (app.tasks[name].soft_time_limit, app.tasks[name].time_limit) == (300, 360), name
    # Its limits come with each message, per report type.
    assert app.tasks["django_async_reports.generate_report"].time_limit is None

    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "TASK_SOFT_TIME_LIMIT": 20}
    app = make_app()
    configure_celery(app)
    for name in SHORT_TASKS:
        assert (app.tasks[name].soft_time_limit, app.tasks[name].time_limit) == (20, 80), name

    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "TASK_TIME_LIMIT": 25}
    app = make_app()
    configure_celery(app)
    assert app.tasks["django_async_reports.deliver_webhook"].time_limit == 25


def test_the_decorators_carry_the_defaults_of_the_task_time_limits():
    """An app that skips configure_celery still bounds every task."""
    from django_async_reports import tasks
    from django_async_reports.conf import DEFAULTS

    for task in vars(tasks).values():
        if getattr(task, "name", None) in SHORT_TASKS:
            assert task.soft_time_limit == DEFAULTS["TASK_SOFT_TIME_LIMIT"], task.name
            assert task.time_limit == DEFAULTS["TASK_SOFT_TIME_LIMIT"] + 60, task.name


def test_host_task_annotations_are_kept_and_win():
    webhook = "django_async_reports.deliver_webhook"
    app = make_app(
        task_annotations={
            webhook: {"rate_limit": "10/s", "time_limit": 900},
            "proj.send": {"rate_limit": "1/s"},
        }
    )
    configure_celery(app)
    annotations = app.conf.task_annotations
    assert annotations[webhook] == {"soft_time_limit": 300, "time_limit": 900, "rate_limit": "10/s"}
    assert annotations["proj.send"] == {"rate_limit": "1/s"}
    assert app.tasks[webhook].time_limit == 900
    assert app.tasks[webhook].rate_limit == "10/s"
    assert app.tasks["django_async_reports.tick_schedules"].time_limit == 360

    # A list (or an annotation object): Celery applies the first match, the host's.
    app = make_app(task_annotations=[{webhook: {"time_limit": 900}}])
    configure_celery(app)
    assert app.tasks[webhook].time_limit == 900
    assert app.tasks[webhook].soft_time_limit == 300  # the class's own (decorator) value
    assert app.tasks["django_async_reports.post_process_report"].time_limit == 360


def test_step_retry_delays_stay_under_the_bound_the_check_assumes():
    """E021 counts a post-processing or notification retry as waiting this long at most."""
    from django_async_reports import part_tasks, tasks
    from django_async_reports.broker_limits import STEP_RETRY_DELAY_BOUND

    found = [*vars(tasks).values(), *vars(part_tasks).values()]
    for name in SHORT_TASKS - {"django_async_reports.deliver_webhook"}:
        task = next(t for t in found if getattr(t, "name", None) == name)
        assert (task.default_retry_delay or 0) <= STEP_RETRY_DELAY_BOUND, name


def test_post_processing_backoff_stays_under_that_bound():
    """Its countdown grows (10, 20, 40... s) to outlast a short outage, and stops at the bound."""
    from django_async_reports import tasks
    from django_async_reports.broker_limits import STEP_RETRY_DELAY_BOUND

    countdowns = [
        tasks._post_process_countdown(n) for n in range(tasks.post_process_report.max_retries)
    ]
    assert countdowns[:3] == [10, 20, 40]
    assert max(countdowns) == STEP_RETRY_DELAY_BOUND
    # A finished file is given up only after the outage lasted about 20 minutes.
    assert sum(countdowns) >= 15 * 60
