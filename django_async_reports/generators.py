"""``ReportGenerator``, the base class host projects subclass to define a report type."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from .charts import Chart
from .conf import report_settings
from .exceptions import InvalidGenerator, ReportCancelled

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from rest_framework.serializers import Serializer

    from .models import Report


class ReportGenerator:
    """Describe one report type: its parameters, its columns and how to produce its rows.

    Subclass it in a ``reports.py`` module of any installed app and decorate the
    subclass with ``@register``. The worker creates one instance per run, with
    ``self.report`` (the :class:`~django_async_reports.models.Report` being built)
    and ``self.user`` (its requester) set, so rows can be scoped to the user.
    """

    #: The value clients send as ``report_type``. Required, unique.
    report_type: ClassVar[str]
    #: Human name shown by ``GET /types/``; defaults to the report_type.
    label: ClassVar[str] = ""
    #: Longer help text shown by ``GET /types/``.
    description: ClassVar[str] = ""
    #: Optional DRF serializer class validating ``parameters`` before anything is queued.
    parameters_class: ClassVar[type[Serializer] | None] = None
    #: Header of the file; rows are sequences in this order. Required.
    columns: ClassVar[Sequence[str]] = ()
    #: Set to False to write cells starting with = + - @ tab CR verbatim.
    neutralize_formulas: ClassVar[bool | None] = None
    #: Per-type soft time limit in seconds; None uses ASYNC_REPORTS["SOFT_TIME_LIMIT"].
    soft_time_limit: ClassVar[int | None] = None
    #: Most rows written in one batch. Batches are also handed over, full or not,
    #: every PROGRESS_INTERVAL / CANCEL_CHECK_INTERVAL seconds, so slow rows still
    #: show progress and see a cancel in time.
    chunk_size: ClassVar[int] = 500
    #: When ``rows()`` returns a QuerySet and the report is CSV on PostgreSQL,
    #: let the database write the rows with ``COPY`` (same bytes, about twice as
    #: fast; see docs/generators.md). False always uses the rows path.
    copy_fast_path: ClassVar[bool] = True
    #: Formats this type may be requested in; None offers every installed format.
    formats: ClassVar[Sequence[str] | None] = None
    #: Charts drawn in XLSX (native charts) and PDF files, see :mod:`.charts`.
    charts: ClassVar[Sequence[Chart]] = ()
    #: Seconds a finished report of this type is kept; None uses RETENTION_SECONDS.
    retention: ClassVar[int | timedelta | None] = None
    #: Seconds an identical request reuses a completed report of this type;
    #: None uses REUSE_WINDOW_SECONDS, 0 never reuses (data that changes by the minute).
    reuse_window: ClassVar[int | timedelta | None] = None

    def __init__(self, report: Report | None = None, user: AbstractBaseUser | None = None) -> None:
        self.report = report
        self.user = user if user is not None else getattr(report, "user", None)
        self._last_cancel_check = -math.inf

    # -- declaration -------------------------------------------------------
    @classmethod
    def check_declaration(cls) -> None:
        """Raise :class:`InvalidGenerator` when the class lacks what it must declare."""
        name = f"{cls.__module__}.{cls.__qualname__}"
        report_type = getattr(cls, "report_type", None)
        if not isinstance(report_type, str) or not report_type:
            raise InvalidGenerator(f"{name} must set report_type to a non-empty string.")
        if len(report_type) > 64 or not report_type.replace("_", "").replace("-", "").isalnum():
            raise InvalidGenerator(
                f"{name}.report_type must be at most 64 letters, digits, '-' or '_'."
            )
        if not cls.columns or any(not isinstance(c, str) for c in cls.columns):
            raise InvalidGenerator(f"{name} must set columns to a non-empty list of strings.")
        if cls.rows is ReportGenerator.rows:
            raise InvalidGenerator(f"{name} must implement rows(self, params).")
        if cls.partitions is not ReportGenerator.partitions and not cls.takes_partition():
            raise InvalidGenerator(
                f"{name} declares partitions(): its rows() must accept them, "
                "as rows(self, params, partition=None)."
            )
        from .writers import writer_classes

        if cls.formats is not None:
            unknown = [f for f in cls.formats if f not in writer_classes()]
            if unknown or not cls.formats:
                raise InvalidGenerator(
                    f"{name}.formats must list known formats "
                    f"({', '.join(writer_classes())}); got {list(cls.formats)!r}."
                )
        for chart in cls.charts:
            if not isinstance(chart, Chart):
                raise InvalidGenerator(f"{name}.charts must hold Chart instances.")
            problems = chart.check(cls.get_columns())
            if problems:
                raise InvalidGenerator(f"{name}: chart {chart.title!r}: {'; '.join(problems)}.")
        if cls.retention is not None and _seconds(cls.retention) <= 0:
            raise InvalidGenerator(f"{name}.retention must be at least one second.")
        if cls.reuse_window is not None and _seconds(cls.reuse_window) < 0:
            raise InvalidGenerator(f"{name}.reuse_window must not be negative.")

    @classmethod
    def has_permission(cls, user: Any) -> bool:
        """Whether ``user`` may run this report type; every authenticated user by default.

        Asked on every request, regenerate, retry, schedule and scheduled run,
        and by ``GET /types/``: a type the user may not run is not listed and
        is refused as unknown. Override it, e.g.
        ``return user.has_perm("sales.view_revenue")``.
        """
        return bool(getattr(user, "is_authenticated", False))

    @classmethod
    def get_label(cls) -> str:
        return cls.label or cls.report_type

    @classmethod
    def get_columns(cls) -> list[str]:
        return list(cls.columns)

    @classmethod
    def get_formats(cls) -> list[str]:
        """The formats this type can be requested in here: declared and installed."""
        from .writers import available_formats

        installed = available_formats()
        if cls.formats is None:
            return installed
        return [f for f in cls.formats if f in installed]

    @classmethod
    def get_retention_seconds(cls) -> int:
        """Seconds a finished report of this type is kept before cleanup."""
        from .conf import report_settings

        value = cls.retention if cls.retention is not None else report_settings.RETENTION_SECONDS
        return _seconds(value)

    @classmethod
    def get_reuse_window_seconds(cls) -> int:
        """Seconds an identical completed report is reused; 0 disables reuse."""
        from .conf import report_settings

        value = cls.reuse_window
        if value is None:
            value = report_settings.REUSE_WINDOW_SECONDS
        return _seconds(value)

    # -- parameters --------------------------------------------------------
    @classmethod
    def get_parameters_serializer(
        cls, data: Mapping[str, Any], context: dict[str, Any] | None = None
    ) -> Serializer | None:
        if cls.parameters_class is None:
            return None
        return cls.parameters_class(data=data, context=context or {})

    @classmethod
    def clean_parameters(
        cls, data: Mapping[str, Any], context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Validate raw ``parameters`` and return their JSON-safe, normalised form.

        Raises ``rest_framework.exceptions.ValidationError`` with field errors.
        """
        serializer = cls.get_parameters_serializer(data, context)
        if serializer is None:
            return dict(data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.data)

    def get_params(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Turn stored (JSON) parameters into the validated, typed values ``rows`` gets."""
        serializer = self.get_parameters_serializer(
            stored, {"report": self.report, "user": self.user}
        )
        if serializer is None:
            return dict(stored)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    # -- data --------------------------------------------------------------
    def count(self, params: dict[str, Any]) -> int | None:
        """Optionally return how many rows ``rows`` will yield, for a true percentage."""
        return None

    def rows(self, params: dict[str, Any]) -> Iterable[Sequence[Any]]:
        """Yield one sequence per row, in ``columns`` order. Must be overridden.

        It may instead return a QuerySet of ``values_list(...)`` (or
        ``values(...)``) in ``columns`` order: it is read in chunks, never cached
        whole, and CSV reports on PostgreSQL are written by ``COPY``.

        A generator that declares :meth:`partitions` takes a third argument,
        ``rows(self, params, partition=None)``: one of its descriptors, or None
        for every row (the report is then run as one task, in a format that
        does not concatenate, say).
        """
        raise NotImplementedError("ReportGenerator subclasses must implement rows().")

    def partitions(self, params: dict[str, Any]) -> Sequence[Any] | None:
        """Optionally split the rows into parts generated in parallel, in this order.

        Return JSON-serialisable descriptors (key ranges such as ``[lo, hi]``,
        ids, dates...); each part's task calls ``rows(params, partition=descriptor)``
        and the parts' files are joined in order, so the file is the same bytes as
        ``rows(params)`` writes when the parts together yield its rows in order.
        None (the default), or fewer than two parts, runs the report as one task.
        Only formats whose files concatenate (CSV, NDJSON) are split; see
        docs/partitions.md.
        """
        return None

    @classmethod
    def takes_partition(cls) -> bool:
        """Whether ``rows`` accepts a ``partition`` argument (a partitioned generator's)."""
        try:
            parameters = inspect.signature(cls.rows).parameters
        except (TypeError, ValueError):
            return False
        kinds = {p.kind for p in parameters.values()}
        return "partition" in parameters or inspect.Parameter.VAR_KEYWORD in kinds

    def raise_if_cancelled(self) -> None:
        """Stop the run here if its report was cancelled: for long work between two rows.

        The run loop sees a cancel only when ``rows()`` hands it rows. Call this
        in a long stretch without rows (pages of an API read before the first
        row, a computation in steps, ``count()``). It raises
        :class:`~django_async_reports.exceptions.ReportCancelled`, which the run
        treats as a cancel seen between rows: nothing is stored. Let it
        propagate (clean up in ``finally``). The database is read at most once
        every ``CANCEL_CHECK_INTERVAL`` seconds, so it is cheap in a loop. It
        does nothing for a generator made without a saved report (in a test).
        """
        report = self.report
        if report is None or report._state.adding:  # none, or never saved
            return
        now = time.monotonic()
        last = getattr(self, "_last_cancel_check", -math.inf)  # a subclass's own __init__
        if now - last < float(report_settings.CANCEL_CHECK_INTERVAL):
            return
        self._last_cancel_check = now
        report_model = type(report)
        # This run's claim: a report cancelled, finished or taken over by another run.
        running = report_model._default_manager.filter(
            pk=report.pk, status=report_model.Status.PROCESSING, attempt=report.attempt
        )
        if not running.exists():
            raise ReportCancelled(report.pk)

    def summary(self, params: dict[str, Any], row_count: int) -> dict[str, Any] | None:
        """Optionally return summary figures stored in ``result_data["summary"]``."""
        return None

    def get_filename(self) -> str:
        """Base name (without extension) of the downloaded file."""
        title = getattr(self.report, "title", "") or self.get_label()
        return title


def _seconds(value: int | float | timedelta) -> int:
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return int(value)
