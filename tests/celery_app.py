"""The Celery app of the test suite, configured as a host project would."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")

from django_async_reports.celery_config import configure_celery  # noqa: E402

configure_celery(app)
app.autodiscover_tasks()
