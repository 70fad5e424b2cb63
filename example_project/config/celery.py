"""The Celery app of the example project.

Start a worker with ``celery -A config worker -Q reports,reports_high_priority``.

The package never creates a Celery app; the host project does, then lets
``configure_celery`` declare the report queues and routes.
"""

import os

from celery import Celery

from django_async_reports.celery_config import configure_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
configure_celery(app)
app.autodiscover_tasks()
