"""The models: ``Report``, ``ReportPart``, ``ReportSchedule``, ``ScheduleExecution``,
``WebhookDelivery``.

Their querysets are the only writers of their state: ``Report.objects.transition``
and ``ScheduleExecution.objects.claim_channel`` / ``record_report_outcome``.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .exceptions import MAX_ERROR_LENGTH
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

    def transition(self, pk: Any, from_: str | Iterable[str], **fields: Any) -> bool:
        """Set ``fields`` on report ``pk`` only while its status is one of ``from_``.

        The one way a report's state changes: a conditional ``UPDATE ... WHERE
        status IN (...)``, so a redelivered or retried task, or a cancel racing
        a worker, never moves a report from a state it has already left.
        ``updated_at`` is set too. True when the row changed.
        """
        statuses = [from_] if isinstance(from_, str) else list(from_)
        fields.setdefault("updated_at", timezone.now())
        return bool(self.filter(pk=pk, status__in=statuses).update(**fields))


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

    class Step(models.TextChoices):
        GENERATE = "generate", _("Generate")
        POST_PROCESS = "post_process", _("Post-process")
        ASSEMBLE = "assemble", _("Assemble")
        NOTIFY = "notify", _("Notify")

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
    format = models.CharField(
        _("format"), max_length=16, default="csv", help_text=_("File format: csv, xlsx, json...")
    )
    compress = models.BooleanField(_("compress"), default=False, help_text=_("Gzip the file."))
    # sha256 of (report_type, format, compress, normalised parameters): finds
    # an identical earlier request of the same user to reuse.
    fingerprint = models.CharField(_("fingerprint"), max_length=64, blank=True, editable=False)
    idempotency_key = models.CharField(max_length=255, blank=True, default="", editable=False)
    result_file = models.FileField(
        _("result file"), upload_to="", storage=get_report_storage, max_length=255, blank=True
    )
    result_data = models.JSONField(_("result data"), default=dict, blank=True)
    # What users read (API, e-mails, webhooks): words, never hosts or paths...
    error_message = models.TextField(_("error message"), blank=True)
    # ...and what admins read: the exception and its traceback (admin only).
    error_detail = models.TextField(_("error detail"), blank=True, editable=False)
    retry_count = models.PositiveIntegerField(_("retry count"), default=0)
    # Claims by a worker, the first run included; it only ever grows.
    attempt = models.PositiveIntegerField(_("attempt"), default=0, editable=False)
    # Runs whose worker process was lost (the message came back redelivered).
    worker_losses = models.PositiveIntegerField(_("worker losses"), default=0, editable=False)
    # The outbox: the step whose message the broker has not confirmed (``notify``:
    # not delivered yet), due from next_step_at; else the sweeper sends it.
    next_step = models.CharField(
        _("next step"), max_length=20, choices=Step.choices, blank=True, default="", editable=False
    )
    next_step_at = models.DateTimeField(_("next step due"), null=True, blank=True, editable=False)
    send_email = models.BooleanField(
        _("send e-mail"), default=False, help_text=_("E-mail the requester when it finishes.")
    )
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    webhook_url = models.URLField(
        _("webhook URL"),
        max_length=500,
        blank=True,
        help_text=_("POSTed a signed JSON payload when the report completes or fails."),
    )
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
        # Priorities outside PRIORITIES_WITHOUT_PERMISSION need it (docs/security.md).
        permissions = [("request_urgent_report", _("Can request reports at any priority"))]
        indexes = [
            models.Index(fields=["status"], name="async_report_status_idx"),
            models.Index(fields=["report_type"], name="async_report_type_idx"),
            models.Index(fields=["user", "status"], name="async_report_user_status_idx"),
            models.Index(fields=["expires_at"], name="async_report_expires_idx"),
            models.Index(fields=["user", "-created_at"], name="async_report_user_created_idx"),
            models.Index(fields=["user", "fingerprint"], name="async_report_user_fp_idx"),
            models.Index(
                fields=["next_step_at"],
                condition=~models.Q(next_step=""),
                name="async_report_outbox_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="async_report_progress_lte_100"
            ),
            models.UniqueConstraint(  # one report per client's Idempotency-Key
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="async_report_user_idempotency_key",
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

    @property
    def is_expired(self) -> bool:
        """True once ``expires_at`` has passed (cleanup deletes the row soon after)."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from ``started_at`` to ``completed_at``; None until both are set."""
        if self.started_at is None or self.completed_at is None:
            return None
        return round(max(0.0, (self.completed_at - self.started_at).total_seconds()), 3)

    @property
    def row_count(self) -> int | None:
        """Rows the finished file holds (``result_data["row_count"]``); None before."""
        value = (self.result_data or {}).get("row_count")
        return int(value) if value is not None else None


class ReportSchedule(models.Model):
    """A report generated again and again: daily, weekly, monthly or on a cron expression.

    ``parameters`` may hold template variables (``{{last_week_start}}``...)
    rendered in the schedule's ``timezone`` at run time. Like ``Report``,
    ``report_type`` has no ``choices``: the registry validates it.
    """

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")
        CUSTOM = "custom", _("Custom (cron expression)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="async_report_schedules",
        verbose_name=_("owner"),
    )
    report_type = models.CharField(_("report type"), max_length=64)
    title = models.CharField(_("title"), max_length=255)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    priority = models.CharField(
        _("priority"),
        max_length=10,
        choices=Report.Priority.choices,
        default=Report.Priority.NORMAL,
    )
    # Blank means DEFAULT_FORMAT (or the type's first format), resolved on save.
    format = models.CharField(_("format"), max_length=16, blank=True, default="")
    compress = models.BooleanField(_("compress"), default=False)
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    cron_expression = models.CharField(_("cron expression"), max_length=120, blank=True)
    time_of_day = models.TimeField(_("time of day"), default=datetime.time(8, 0))
    # 0 = Monday ... 6 = Sunday, as datetime.weekday(); weekly schedules only.
    weekday = models.PositiveSmallIntegerField(_("weekday"), null=True, blank=True)
    # 1-31; a day past the end of a month runs on its last day. Monthly only.
    day_of_month = models.PositiveSmallIntegerField(_("day of month"), null=True, blank=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    enabled = models.BooleanField(_("enabled"), default=True)
    send_email = models.BooleanField(_("send e-mail"), default=False)
    email_recipients = models.JSONField(_("e-mail recipients"), default=list, blank=True)
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    webhook_secret = models.CharField(_("webhook secret"), max_length=100, blank=True)
    skip_if_empty = models.BooleanField(
        _("skip if empty"),
        default=False,
        help_text=_("Deliver nothing when the report has no rows."),
    )
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("report schedule")
        verbose_name_plural = _("report schedules")
        ordering = ["-created_at"]
        indexes = [
            # The tick's query: enabled schedules whose next run is due.
            models.Index(fields=["enabled", "next_run_at"], name="async_sched_due_idx"),
            models.Index(fields=["owner", "-created_at"], name="async_sched_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_frequency_display()})"


class ScheduleExecutionQuerySet(models.QuerySet["ScheduleExecution"]):
    def claim_channel(
        self,
        channel: Literal["email", "webhook"],
        *,
        from_: Iterable[str],
        to: str,
        **lookup: Any,
    ) -> bool:
        """Move the ``<channel>_status`` of the matching executions from ``from_`` to ``to``.

        One conditional UPDATE: of two workers claiming one channel, exactly one
        gets True. ``lookup`` (``pk=...``, ``report=...``) is required.
        """
        if not lookup:
            raise TypeError("claim_channel() needs a lookup, such as pk=... or report=...")
        field = f"{channel}_status"
        rows = self.filter(**lookup, **{f"{field}__in": list(from_)})
        return bool(rows.update(**{field: to}))

    def record_report_outcome(self, report: Report) -> ScheduleExecution | None:
        """Copy a finished report's outcome onto its schedule execution, once.

        Completed reports complete the execution (rows, file size); failed ones
        fail it with the report's error, cancelled ones with "Cancelled" (the run
        did not deliver). A conditional update from ``pending``/``running``.
        Returns the execution when this call recorded the outcome, else None.
        """
        if report.status not in Report.FINISHED_STATUSES:
            return None
        Status = ScheduleExecution.Status
        result = report.result_data or {}
        if report.status == Report.Status.COMPLETED:
            status, error, detail = Status.COMPLETED, "", ""
        elif report.status == Report.Status.CANCELLED:
            # Not the report's error_message: it may still hold an earlier attempt's error.
            status, error, detail = Status.FAILED, "Cancelled", ""
        else:
            status, error = Status.FAILED, report.error_message or "Failed"
            detail = report.error_detail
        updated = self.filter(
            report_id=report.pk, status__in=[Status.PENDING, Status.RUNNING]
        ).update(
            status=status,
            finished_at=report.completed_at or timezone.now(),
            row_count=self._count(result.get("row_count")),
            file_size=self._count(result.get("file_size")),
            error=error[:MAX_ERROR_LENGTH],
            error_detail=detail[:MAX_ERROR_LENGTH],
        )
        if not updated:
            return None
        return self.select_related("schedule").get(report_id=report.pk)

    @staticmethod
    def _count(value: Any) -> int | None:
        """A count from ``result_data``, or None when it is not a non-negative integer."""
        return (
            value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
        )


class ScheduleExecution(models.Model):
    """One run of a schedule: the instant it was due, the report it made, its delivery."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("Run now")

    class Delivery(models.TextChoices):
        NOT_REQUESTED = "not_requested", _("Not requested")
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    # A delivery channel is claimed (to send it, or to skip it) from these...
    CLAIMABLE_DELIVERY = (str(Delivery.NOT_REQUESTED), str(Delivery.PENDING))
    # ...and left in these by a send that may not have finished.
    UNSETTLED_DELIVERY = (str(Delivery.PENDING), str(Delivery.SENDING))

    schedule = models.ForeignKey(
        ReportSchedule,
        on_delete=models.CASCADE,
        related_name="executions",
        verbose_name=_("schedule"),
    )
    due_at = models.DateTimeField(_("due at"))
    trigger = models.CharField(
        _("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE
    )
    report = models.OneToOneField(
        Report,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="schedule_execution",
        verbose_name=_("report"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    row_count = models.PositiveBigIntegerField(_("rows"), null=True, blank=True)
    file_size = models.PositiveBigIntegerField(_("file size"), null=True, blank=True)
    email_status = models.CharField(
        _("e-mail"), max_length=15, choices=Delivery.choices, default=Delivery.NOT_REQUESTED
    )
    webhook_status = models.CharField(
        _("webhook"), max_length=15, choices=Delivery.choices, default=Delivery.NOT_REQUESTED
    )
    error = models.TextField(_("error"), blank=True)  # for the owner: words
    # The exception and its traceback behind ``error``: admin only.
    error_detail = models.TextField(_("error detail"), blank=True, editable=False)
    # Why the run, or one of its channels, was skipped or left someone out.
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScheduleExecutionQuerySet.as_manager()

    class Meta:
        verbose_name = _("schedule execution")
        verbose_name_plural = _("schedule executions")
        ordering = ["-due_at"]
        constraints = [
            # Two beats or two ticks can never record the same run twice.
            models.UniqueConstraint(
                fields=["schedule", "due_at"], name="async_sched_exec_unique_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class WebhookDelivery(models.Model):
    """One attempt to POST a report's outcome to a webhook URL."""

    report = models.ForeignKey(
        Report,
        on_delete=models.CASCADE,
        related_name="webhook_deliveries",
        verbose_name=_("report"),
    )
    execution = models.ForeignKey(
        ScheduleExecution,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_deliveries",
        verbose_name=_("execution"),
    )
    event = models.CharField(_("event"), max_length=40)
    url = models.URLField(_("URL"), max_length=500)
    message_id = models.CharField(_("message id"), max_length=64)
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)
    error = models.TextField(_("error"), blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} -> {self.url} (attempt {self.attempt})"


class ReportPart(models.Model):
    """One partition of a partitioned report's run, generated by a task of its own.

    A run (``Report.attempt``) splits into parts numbered from 0; ``run`` is
    the report attempt they belong to, so a later run's parts never mix with
    a stale one's. ``claims`` counts the part's own claims (a redelivery after
    its worker died takes it over) and fences the part's writes as
    ``Report.attempt`` fences the report's. See docs/partitions.md.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    report = models.ForeignKey(
        Report, on_delete=models.CASCADE, related_name="parts", verbose_name=_("report")
    )
    run = models.PositiveIntegerField(_("report attempt"))
    index = models.PositiveIntegerField(_("index"))
    partition = models.JSONField(_("partition"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    claims = models.PositiveIntegerField(_("claims"), default=0)
    rows = models.PositiveBigIntegerField(_("rows"), default=0)
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(_("file size"), default=0)
    checksum = models.CharField(_("checksum"), max_length=80, blank=True)
    # The outbox of the part's message: null until the broker confirmed it.
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("report part")
        verbose_name_plural = _("report parts")
        ordering = ["report", "run", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "run", "index"], name="async_report_part_unique_index"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.report_id} part {self.index} of run {self.run} ({self.status})"
