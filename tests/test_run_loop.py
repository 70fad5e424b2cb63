"""The run loop follows the clock: slow rows still publish progress and see a cancel in time."""

from __future__ import annotations

import time

import pytest

from django_async_reports import services
from django_async_reports.exceptions import ReportCancelled
from django_async_reports.models import Report
from tests.factories import ReportFactory


class Clock:
    """A clock the test moves: each row advances it by ``step`` seconds."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        return self.now


def timed_rows(clock: Clock, count: int):
    for n in range(count):
        clock.now += clock.step
        yield (n,)


class TestPacedBatches:
    def test_fast_rows_come_in_full_batches(self):
        clock = Clock(step=0.0)
        batches = list(services.paced_batches(timed_rows(clock, 1050), 500, 1.0, clock=clock))
        assert [len(b) for b in batches] == [500, 500, 50]
        assert [row for batch in batches for row in batch] == [(n,) for n in range(1050)]

    def test_slow_rows_are_handed_over_once_the_interval_passed(self):
        clock = Clock(step=0.125)  # eight rows a second
        batches = list(services.paced_batches(timed_rows(clock, 35), 500, 1.0, clock=clock))
        # One batch per second of rows instead of one after 62 seconds.
        assert [len(b) for b in batches] == [8, 8, 8, 8, 3]

    def test_a_row_slower_than_the_interval_is_handed_over_alone(self):
        clock = Clock(step=3.0)
        batches = list(services.paced_batches(timed_rows(clock, 3), 500, 1.0, clock=clock))
        assert [len(b) for b in batches] == [1, 1, 1]

    def test_no_rows_no_batch(self):
        assert list(services.paced_batches(iter(()), 500, 1.0)) == []


@pytest.fixture
def tenth_of_a_second(settings):
    settings.ASYNC_REPORTS = {
        **settings.ASYNC_REPORTS,
        "PROGRESS_INTERVAL": 0.1,
        "CANCEL_CHECK_INTERVAL": 0.1,
        "PROGRESS_STEP": 1,
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("tenth_of_a_second")
class TestSlowRowsOnTheService:
    """The ``paced`` generator keeps the default chunk_size of 500 and sleeps between rows."""

    def claimed(self, user, **parameters):
        report = ReportFactory(user=user, report_type="paced", parameters=parameters)
        return services.claim_report(report.pk)

    def test_progress_moves_while_the_first_batch_is_far_from_full(self, user):
        report = self.claimed(user, count=20, delay=0.05, text="")
        published: list[tuple[float, int]] = []
        start = time.monotonic()
        services.generate(
            report, task_state=lambda pct, msg: published.append((time.monotonic() - start, pct))
        )
        percents = [pct for _t, pct in published]
        # Before: 0 then 99 (one batch of 500 never filled). Now: several steps on the way.
        assert len({p for p in percents if 0 < p < 99}) >= 3, published
        assert percents == sorted(percents)
        first_move = next(t for t, pct in published if pct > 0)
        assert first_move < 0.8, published  # 0.1 s interval; generous for a busy machine

    def test_a_cancel_is_seen_within_the_interval_though_rows_are_slow(self, user):
        report = self.claimed(user, count=200, delay=0.02, text="")
        cancelled_at: list[float] = []

        def cancel_once_under_way(pct, msg):
            if pct >= 5 and not cancelled_at:
                Report.objects.filter(pk=report.pk).update(status=Report.Status.CANCELLED)
                cancelled_at.append(time.monotonic())

        with pytest.raises(ReportCancelled):
            services.generate(report, task_state=cancel_once_under_way)
        seen_after = time.monotonic() - cancelled_at[0]
        assert seen_after < 0.6, seen_after  # CANCEL_CHECK_INTERVAL is 0.1 s; rows 4 s more


class TestPacedBatchesEdges:
    def test_an_interval_of_zero_groups_by_size_alone(self):
        """0 used to mean "look after every chunk": never a database round trip per row."""
        clock = Clock(step=0.5)
        batches = list(services.paced_batches(timed_rows(clock, 1200), 500, 0.0, clock=clock))
        assert [len(b) for b in batches] == [500, 500, 200]

    def test_the_rows_are_closed_when_the_caller_stops_early(self):
        closed = []

        def rows():
            try:
                yield from ((n,) for n in range(10_000))
            finally:
                closed.append(True)  # a generator's cursor, its finally

        batches = services.paced_batches(rows(), 500, 1.0)
        next(batches)
        batches.close()
        assert closed == [True]


@pytest.mark.django_db
class TestClaimsOfTwoMessages:
    """A report sent again at a higher priority has two messages; one runs it."""

    def test_the_claim_names_the_running_message(self, user):
        report = ReportFactory(user=user, report_type="numbers", parameters={"count": 1})
        claimed = services.claim_report(report.pk, task_id="message-b")
        assert claimed is not None and claimed.celery_task_id == "message-b"

    def test_a_redelivered_stale_message_does_not_take_over_another_messages_run(self, user):
        report = ReportFactory(user=user, report_type="numbers", parameters={"count": 1})
        assert services.claim_report(report.pk, task_id="message-b") is not None
        # Message A comes back redelivered (its worker restarted while it sat prefetched).
        assert services.claim_report(report.pk, redelivered=True, task_id="message-a") is None
        # The running message's own redelivery (its worker died) does take over.
        again = services.claim_report(report.pk, redelivered=True, task_id="message-b")
        assert again is not None and again.status == Report.Status.PROCESSING

    def test_each_claim_counts_and_a_takeover_counts_a_lost_worker(self, user):
        report = ReportFactory(user=user, report_type="numbers", parameters={"count": 1})
        services.claim_report(report.pk, task_id="m")
        services.claim_report(report.pk, redelivered=True, task_id="m")
        report.refresh_from_db()
        assert (report.attempt, report.worker_losses) == (2, 1)

    def test_a_report_that_keeps_killing_its_worker_fails_for_good(
        self, user, settings, captured_dispatches
    ):
        settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "MAX_WORKER_LOSSES": 2}
        report = ReportFactory(user=user, report_type="numbers", parameters={"count": 1})
        assert services.claim_report(report.pk, task_id="m") is not None
        assert services.claim_report(report.pk, redelivered=True, task_id="m") is not None
        # The second loss reaches the limit: failed, not run a third time.
        assert services.claim_report(report.pk, redelivered=True, task_id="m") is None
        report.refresh_from_db()
        assert report.status == Report.Status.FAILED
        assert report.error_message.startswith("The worker running this report was lost 2 times")
        # The admin's Retry starts the count again.
        retried = services.retry_report(report)
        assert retried.worker_losses == 0 and retried.status == Report.Status.PENDING
