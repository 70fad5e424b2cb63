"""The ``Report`` model: one requested report, its status, progress and result file."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .storage import get_report_storage


class ReportQuerySet(models.QuerySet["Report"]):
    def for_user(self, user: Any) -> ReportQuerySet:
        """Reports ``user`` may see: their own."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user)

    def active(self) -> ReportQuerySet:
        return self.filter(status__in=Report.ACTIVE_STATUSES)

    def finished(self) -> ReportQuerySet:
        return self.filter(status__in=Report.FINISHED_STATUSES)


class Report(models.Model):
    """A report requested by a user and built by a Celery worker.

    ``report_type`` names a registered generator; it has no ``choices`` so that
    registering a generator never creates a migration. Every status change goes
    through :mod:`django_async_reports.services` as a conditional update.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class Priority(models.TextChoices):
        URGENT = "urgent", _("Urgent")
        HIGH = "high", _("High")
        NORMAL = "normal", _("Normal")
        LOW = "low", _("Low")

    ACTIVE_STATUSES = (Status.PENDING, Status.PROCESSING)
    FINISHED_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="async_reports",
        verbose_name=_("user"),
    )
    report_type = models.CharField(_("report type"), max_length=64)
    title = models.CharField(_("title"), max_length=255)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    celery_task_id = models.CharField(_("Celery task id"), max_length=255, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    progress_message = models.CharField(_("progress message"), max_length=255, blank=True)
    result_file = models.FileField(
        _("result file"), upload_to="", storage=get_report_storage, max_length=255, blank=True
    )
    result_data = models.JSONField(_("result data"), default=dict, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    retry_count = models.PositiveIntegerField(_("retry count"), default=0)
    send_email = models.BooleanField(
        _("send e-mail"), default=False, help_text=_("E-mail the requester when it finishes.")
    )
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status"], name="async_report_status_idx"),
            models.Index(fields=["report_type"], name="async_report_type_idx"),
            models.Index(fields=["user", "status"], name="async_report_user_status_idx"),
            models.Index(fields=["expires_at"], name="async_report_expires_idx"),
            models.Index(fields=["user", "-created_at"], name="async_report_user_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="async_report_progress_lte_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    def get_generator_class(self) -> Any:
        from .registry import registry

        return registry.get(self.report_type)
