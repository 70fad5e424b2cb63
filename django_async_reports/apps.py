"""The app config: registers the system checks and the tasks, and autodiscovers ``reports.py``."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class AsyncReportsConfig(AppConfig):
    name = "django_async_reports"
    label = "django_async_reports"
    verbose_name = _("Asynchronous reports")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            broker_checks,  # noqa: F401  (registers the broker topology's system checks)
            checks,  # noqa: F401  (registers the system checks)
            security_checks,  # noqa: F401  (registers the security settings' checks)
            tasks,  # noqa: F401  (registers the shared tasks)
        )
        from .registry import registry

        autodiscover_modules("reports", register_to=registry)
