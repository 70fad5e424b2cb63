"""The run loop: stream a generator's rows through a writer to storage, paced by the clock.

Rows are written in batches of the generator's ``chunk_size``; a batch is also
handed over, full or not, every ``PROGRESS_INTERVAL`` / ``CANCEL_CHECK_INTERVAL``
seconds, so progress and a cancel are seen in time whatever the pace of rows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from .. import progress
from ..conf import report_settings
from ..exceptions import ReportCancelled
from ..generators import ReportGenerator
from ..models import Report
from ..registry import registry
from ..storage import report_file_name, report_storage
from ..writers import CSVWriter, ReportContext, ReportWriter, get_writer_class
from . import copy_export, measured_output, outbox, s3_stream
from .files import delete_file
from .queryset_rows import queryset_rows

Status = Report.Status


def paced_batches(
    rows: Iterable[Any], size: int, every: float, *, clock: Callable[[], float] = time.monotonic
) -> Generator[list[Any], None, None]:
    """Group ``rows`` in lists of ``size``, or fewer once ``every`` seconds have passed.

    Fast rows are written in full batches; slow rows (an API call or a
    computation per row) still reach the caller, and with them the progress
    and cancellation checks, at least every ``every`` seconds of wall-clock
    time. The clock is read once per row: a few tens of nanoseconds. A row
    that blocks longer than ``every`` delays the hand-over until it returns.
    An ``every`` of 0 (or less) groups by ``size`` alone: handing over every
    row would cost a database round trip per row. ``rows`` is closed when the
    caller stops early (a cancel, an error), as a ``for`` loop over it would.
    """
    iterator = iter(rows)
    try:
        if every <= 0:
            while full := list(itertools.islice(iterator, size)):
                yield full
            return
        batch: list[Any] = []
        deadline = clock() + every
        for row in iterator:
            batch.append(row)
            if len(batch) >= size or clock() >= deadline:
                yield batch
                batch = []
                deadline = clock() + every
        if batch:
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def copy_plan(
    rows: Any,
    generator: ReportGenerator,
    writer_class: type[ReportWriter],
    columns: list[str],
    neutralize: bool,
    expected_rows: int | None = None,
) -> copy_export.CopyPlan | None:
    """The COPY fast path's plan when it applies: a QuerySet, plain CSV, PostgreSQL, and not
    fewer ``expected_rows`` (the generator's count, when known) than ``COPY_MIN_ROWS``."""
    if not (isinstance(rows, QuerySet) and writer_class is CSVWriter and generator.copy_fast_path):
        return None
    # The fast path's fixed cost (a column-type query, a connection of its own)
    # outweighs its per-row gain on a small report; both paths write the same bytes.
    if expected_rows is not None and expected_rows < int(report_settings.COPY_MIN_ROWS):
        return None
    return copy_export.plan_copy(
        rows, columns, neutralize=neutralize, owner=type(generator).__name__
    )


def write_rows(
    rows: Iterable[Sequence[Any]],
    writer: ReportWriter,
    generator: ReportGenerator,
    columns: list[str],
    tracker: progress.ProgressTracker,
    report_id: Any,
) -> None:
    """The rows path: rows in paced batches through the writer, progress and cancel per batch."""
    batches = paced_batches(rows, max(1, generator.chunk_size), tracker.pace)
    with closing(batches):  # closes rows() too: its cursor, its finally
        for chunk in batches:
            if tracker.rows == 0 and len(chunk[0]) != len(columns):
                raise ValueError(
                    f"{type(generator).__name__}.rows() yielded {len(chunk[0])} values "
                    f"for {len(columns)} columns."
                )
            writer.write_rows(chunk)
            if not tracker.advance(len(chunk)):
                raise ReportCancelled(report_id)


@contextmanager
def _report_output(
    name: str, writer_class: type[ReportWriter], *, compress: bool
) -> Iterator[s3_stream.StreamedOutput]:
    """Where the writer writes: an S3 upload as it goes (:mod:`.s3_stream`), or a temporary
    file saved to the report storage once complete, measured on the way when it can be
    (:mod:`.measured_output`); nothing is saved on an error."""
    if s3_stream.streams(report_storage, writer_class.format):
        with s3_stream.upload_stream(report_storage, name, compress=compress) as streamed:
            yield streamed
        return
    with measured_output.temp_file_output(
        report_storage, name, writer_class.format, compress=compress
    ) as output:
        yield output


def generate(report: Report, *, task_state: Callable[[int, str], None] | None = None) -> Report:
    """Stream the generator's rows to the report storage: through a temporary file, or
    straight into an S3 upload for the formats :mod:`.s3_stream` streams.

    Raises :class:`ReportCancelled` when the report is cancelled meanwhile (or
    another run took it over: every write is conditional on ``report.attempt``);
    the temporary file is removed and nothing is stored. Then hands over to
    the post-processing step (:mod:`.outbox`).
    """
    generator_class = registry.get(report.report_type)
    generator = generator_class(report=report, user=report.user)
    params = generator.get_params(report.parameters)
    expected_rows = generator.count(params)
    tracker = progress.ProgressTracker(
        report.pk,
        expected_rows,
        attempt=report.attempt,
        task_state=task_state,
        report=report,
    )
    if not tracker.publish(0, "Generating"):
        raise ReportCancelled(report.pk)
    neutralize = generator.neutralize_formulas
    if neutralize is None:
        neutralize = bool(report_settings.NEUTRALIZE_FORMULAS)
    writer_class = get_writer_class(report.format or str(report_settings.DEFAULT_FORMAT))
    columns = generator.get_columns()
    context = ReportContext(
        title=report.title,
        report_type=report.report_type,
        label=str(generator_class.get_label()),
        parameters=report.parameters,
        generated_at=timezone.now(),
        charts=tuple(generator_class.charts),
    )
    # The attempt is in the key: a stale run of this report (its worker
    # presumed lost) can never overwrite nor delete this run's file.
    name = report_file_name(
        report.user_id,
        report.pk,
        generator.get_filename(),
        writer_class.extension,
        attempt=report.attempt,
    )
    with _report_output(name, writer_class, compress=report.compress) as output:
        writer = writer_class(output.fileobj, neutralize_formulas=neutralize, context=context)
        writer.write_header(columns)
        rows = generator.rows(params)
        plan = copy_plan(rows, generator, writer_class, columns, neutralize, expected_rows)
        if plan is not None:
            writer.close()  # the header is out; COPY appends the rows to the same file
            if not copy_export.copy_rows(plan, output.fileobj, tracker.advance):
                raise ReportCancelled(report.pk)
            summary = generator.summary(params, tracker.rows)
        else:
            if isinstance(rows, QuerySet):
                rows = queryset_rows(rows, generator_class.__name__)
            write_rows(rows, writer, generator, columns, tracker, report.pk)
            summary = generator.summary(params, tracker.rows)
            writer.write_summary(summary, tracker.rows)
            writer.close()
    stored_name = output.name
    result_data: dict[str, Any] = {
        "format": writer_class.format,
        "row_count": tracker.rows,
        "columns": columns,
    }
    if summary is not None:
        result_data["summary"] = summary
    if output.stored is not None:  # measured while written: post-processing reads nothing back
        result_data[s3_stream.STREAMED_KEY] = asdict(output.stored)
    updated = Report.objects.filter(attempt=report.attempt).transition(
        report.pk,
        Status.PROCESSING,
        result_file=stored_name,
        result_data=result_data,
        progress=Greatest("progress", 99),
        progress_message="Finalising",
        **outbox.due(outbox.POST_PROCESS),
    )
    if not updated:
        # Cancelled, failed or taken over meanwhile: the file is nobody's
        # (the row never points at another attempt's key; checked all the same).
        current = Report.objects.filter(pk=report.pk).values_list("result_file", flat=True).first()
        if current != stored_name:
            delete_file(stored_name)
        raise ReportCancelled(report.pk)
    progress.write_cache(report.pk, progress=99, message="Finalising", **tracker.snapshot())
    report.refresh_from_db()
    outbox.send(report, outbox.POST_PROCESS)
    return report
