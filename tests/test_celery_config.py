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
    assert normal.queue_arguments == {"x-max-priority": 10}
    assert normal.routing_key == "reports.generate"
    assert normal.exchange.name == "reports" and normal.exchange.type == "direct"
    assert queues[settings.ASYNC_REPORTS["HIGH_PRIORITY_QUEUE"]].queue_arguments == {
        "x-max-priority": 10
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
