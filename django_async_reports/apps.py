"""The app config: registers the system checks and the tasks, autodiscovers ``reports.py``,
and connects the receiver that deletes a deleted user's report files."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import pre_delete
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
            ops_checks,  # noqa: F401  (registers the health and metrics settings' checks)
            pages,  # noqa: F401  (registers the "My reports" page's check)
            part_tasks,  # noqa: F401  (registers the partitioned reports' tasks)
            security_checks,  # noqa: F401  (registers the security settings' checks)
            tasks,  # noqa: F401  (registers the shared tasks)
        )
        from .api.parameters_schema import spectacular_available
        from .registry import registry
        from .services.erasure import delete_files_of_deleted_user

        autodiscover_modules("reports", register_to=registry)
        if spectacular_available():
            # drf-spectacular's extensions register themselves on import.
            from .api import openapi  # noqa: F401
        # The cascade deletes a deleted user's rows; this deletes their files.
        pre_delete.connect(
            delete_files_of_deleted_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="django_async_reports.delete_files_of_deleted_user",
        )
