"""Partitioned reports: parts generated apart, joined into the file one run would write.

The parts' messages are captured and run here, in any order, through the
services the part and assembly tasks call (tests/e2e/test_partitions_e2e.py
runs them on real workers).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from django_async_reports import ReportGenerator, routing, services
from django_async_reports.exceptions import InvalidGenerator, ReportCancelled
from django_async_reports.models import Report, ReportPart
from django_async_reports.services import partitions
from django_async_reports.storage import report_storage
from tests.factories import ReportFactory, SaleFactory
from tests.helpers import set_reports
from tests.s3_server import s3_client

Status = Report.Status


@pytest.fixture
def part_messages(monkeypatch, captured_dispatches):
    """The part messages sent, as (report id, run, index), instead of publishing them."""
    sent = []

    def send_task(name, args, *, priority, **options):
        assert name == routing.GENERATE_REPORT_PART
        assert options["time_limit"] > options["soft_time_limit"]
        sent.append(tuple(args))

    monkeypatch.setattr(routing, "send_task", send_task)
    return sent


def start(report):
    claimed = services.claim_report(report.pk)
    assert claimed is not None
    return services.generate_or_split(claimed)


def run_all(report, part_messages, order=None):
    """Run the report's generation step, its parts (in ``order``), assembly and post-processing."""
    run = start(report).attempt
    messages = [m for m in part_messages if m[:2] == (str(report.pk), run)]
    for i in order if order is not None else range(len(messages)):
        services.run_part(*messages[i])
    services.assemble(report.pk)
    services.post_process(report.pk)
    report.refresh_from_db()
    return report


def file_bytes(report):
    with report_storage.open(report.result_file.name, "rb") as fh:
        return fh.read()


def numbers(user, parts, fmt="csv", count=1000, compress=False, title="Numbers", **params):
    return ReportFactory(
        user=user,
        report_type="partitioned_numbers",
        title=title,  # the gzip header holds the file's name
        format=fmt,
        compress=compress,
        parameters={"count": count, "text": "=x", "parts": parts, **params},
    )


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_parts_joined_are_the_bytes_of_one_run(user, part_messages, fmt):
    whole = run_all(numbers(user, 0, fmt), part_messages)
    assert part_messages == []  # not split
    split = run_all(numbers(user, 4, fmt), part_messages, order=[3, 1, 0, 2])

    assert split.status == Status.COMPLETED, split.error_message
    assert len(part_messages) == 4
    assert file_bytes(split) == file_bytes(whole)
    assert split.result_data["checksum"] == whole.result_data["checksum"]
    digest = hashlib.sha256(file_bytes(split)).hexdigest()
    assert split.result_data["checksum"] == f"sha256:{digest}"
    assert split.result_data["row_count"] == 1000
    assert split.result_data["summary"] == {"numbers": 1000}
    assert split.result_data["parts"] == 4
    # The part files are in the report's file now: only it is left in the folder.
    assert report_storage.listdir(split.result_file.name.rsplit("/", 1)[0])[1] == [
        split.result_file.name.rsplit("/", 1)[1]
    ]


def test_compressed_partitioned_report_is_the_compressed_single_run(user, part_messages):
    whole = run_all(numbers(user, 0, compress=True), part_messages)
    split = run_all(numbers(user, 3, compress=True), part_messages)
    assert split.result_file.name.endswith(".csv.gz")
    assert file_bytes(split) == file_bytes(whole)


@pytest.mark.django_db(transaction=True)  # COPY reads on a connection of its own
def test_queryset_parts_take_the_copy_path_with_the_same_bytes(user, part_messages, monkeypatch):
    for n in range(30):
        SaleFactory(owner=user, customer=f"=cmd {n}", sold_on=timezone.localdate())
    calls = []
    real_copy_rows = partitions.copy_export.copy_rows
    monkeypatch.setattr(
        partitions.copy_export,
        "copy_rows",
        lambda *a: calls.append(1) or real_copy_rows(*a),
    )

    def sales(parts):
        params = {"parts": parts}
        return ReportFactory(user=user, report_type="partitioned_sales", parameters=params)

    whole = run_all(sales(0), part_messages)
    split = run_all(sales(3), part_messages, order=[2, 0, 1])
    assert len(calls) == 1 + 3  # the whole run and each part by COPY
    assert file_bytes(split) == file_bytes(whole)
    assert split.row_count == whole.row_count == 30
    assert file_bytes(split).count(b"'=cmd") == 30


def test_formats_that_do_not_concatenate_run_as_one_task(user, part_messages):
    report = run_all(numbers(user, 4, "xlsx"), part_messages)
    assert report.status == Status.COMPLETED
    assert part_messages == []
    assert not ReportPart.objects.exists()


def test_only_the_last_part_to_finish_records_the_assembly(
    user, part_messages, captured_dispatches
):
    report = numbers(user, 3)
    start(report)
    services.run_part(*part_messages[0])
    services.run_part(*part_messages[2])
    report.refresh_from_db()
    assert report.next_step == "" and not report.result_file
    assert [step for _, step, _ in captured_dispatches.steps] == []

    services.run_part(*part_messages[1])
    report.refresh_from_db()
    assert report.progress_message == "Assembling the parts"
    assert [step for _, step, _ in captured_dispatches.steps] == ["assemble"]
    assert services.assemble(report.pk) is not None
    assert services.assemble(report.pk) is None  # a redelivered assembly: done already
    report.refresh_from_db()
    assert report.result_file
    assert [step for _, step, _ in captured_dispatches.steps] == ["assemble", "post_process"]


def test_a_part_message_again_does_nothing(user, part_messages):
    report = numbers(user, 2)
    start(report)
    assert services.run_part(*part_messages[0]) is not None
    assert services.run_part(*part_messages[0]) is None
    assert services.run_part(*part_messages[0], takeover=True) is None  # done parts stay done


def test_a_redelivered_part_takes_its_part_over_and_fences_the_lost_run(user, part_messages):
    report = start(numbers(user, 2))
    lost = partitions.claim_part(report, report.attempt, 1, takeover=False)  # its worker died
    assert lost is not None and lost.claims == 1

    assert services.run_part(*part_messages[1]) is None  # a duplicate, not a redelivery
    part = services.run_part(*part_messages[1], takeover=True)
    assert part.claims == 2 and part.status == ReportPart.Status.DONE

    # The lost run, had it gone on, may not record its file: it is deleted.
    report_storage.save("stale.csv", ContentFile(b"x"))
    with pytest.raises(ReportCancelled):
        partitions.finish_part(report, lost, "stale.csv", 1, 1, "")
    assert not report_storage.exists("stale.csv")


def test_a_part_lost_too_often_fails_the_report(user, part_messages, settings):
    set_reports(settings, MAX_WORKER_LOSSES=2)
    report = start(numbers(user, 2))
    partitions.claim_part(report, report.attempt, 0, takeover=False)
    partitions.claim_part(report, report.attempt, 0, takeover=True)
    assert services.run_part(*part_messages[0], takeover=True) is None
    report.refresh_from_db()
    assert report.status == Status.FAILED
    assert "lost 2 times" in report.error_message


def test_a_cancel_stops_every_part(user, part_messages):
    report = start(numbers(user, 3))
    services.run_part(*part_messages[0])
    services.cancel_report(Report.objects.get(pk=report.pk))

    assert services.run_part(*part_messages[1]) is None
    assert services.assemble(report.pk) is None
    assert ReportPart.objects.get(report=report, index=1).status == ReportPart.Status.PENDING


def test_a_part_running_when_cancelled_stops_at_its_next_check(user, part_messages, settings):
    set_reports(settings, CANCEL_CHECK_INTERVAL=0, PROGRESS_INTERVAL=0)
    report = start(numbers(user, 2, count=400))
    real_advance = partitions.PartTracker.advance

    def cancel_midway(self, rows):
        Report.objects.filter(pk=report.pk).update(status=Status.CANCELLED)
        return real_advance(self, rows)

    partitions.PartTracker.advance = cancel_midway
    try:
        with pytest.raises(ReportCancelled):
            services.run_part(*part_messages[0])
    finally:
        partitions.PartTracker.advance = real_advance
    assert ReportPart.objects.get(report=report, index=0).status != ReportPart.Status.DONE


def test_progress_is_every_parts_rows_over_the_total(user, part_messages, settings):
    report = start(numbers(user, 4, count=1000))
    ReportPart.objects.filter(report=report, index__in=[1, 2]).update(rows=250)
    part = partitions.claim_part(report, report.attempt, 0, takeover=False)
    tracker = partitions.PartTracker(part, 1000)
    tracker.rows = 100
    assert tracker.publish(0, "")

    report.refresh_from_db()
    assert report.progress == 60  # (250 + 250 + 100) of 1000
    assert report.progress_message == "Processed 600 of 1,000 rows"
    assert ReportPart.objects.get(pk=part.pk).rows == 100


def test_a_part_failure_retries_the_whole_report(
    user, part_messages, monkeypatch, captured_dispatches
):
    from django_async_reports.part_tasks import generate_report_part

    report = start(numbers(user, 2))

    def broken(self, params, partition=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr("tests.testapp.reports.PartitionedNumbersReport.rows", broken)
    result = generate_report_part.apply(args=part_messages[0]).get()
    assert result["status"] == "retrying"
    report.refresh_from_db()
    assert report.status == Status.PENDING
    assert captured_dispatches == [report]  # its generation, sent again: split again


def test_unsent_parts_are_sent_by_the_sweeper(user, monkeypatch, captured_dispatches):
    def refused(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(routing, "send_task", refused)
    report = start(numbers(user, 2))
    assert ReportPart.objects.filter(report=report, sent_at=None).count() == 2

    sent = []
    monkeypatch.setattr(routing, "send_task", lambda name, args, **kw: sent.append(tuple(args)))
    result = services.sweep(timezone.now() + timedelta(minutes=5))
    assert result.sent == 2
    assert sorted(sent) == [(str(report.pk), report.attempt, index) for index in (0, 1)]
    assert not ReportPart.objects.filter(report=report, sent_at=None).exists()


def test_a_retried_report_splits_again_under_its_new_run(user, part_messages):
    report = start(numbers(user, 2))
    services.run_part(*part_messages[0])
    services.fail_report(report.pk, "boom")
    services.retry_report(Report.objects.get(pk=report.pk))
    run_all(Report.objects.get(pk=report.pk), part_messages)
    report.refresh_from_db()
    assert report.status == Status.COMPLETED
    assert set(ReportPart.objects.filter(report=report).values_list("run", flat=True)) == {2}


def test_partitions_need_rows_that_take_a_partition():
    class Broken(ReportGenerator):
        report_type = "broken_partitions"
        columns = ["a"]

        def partitions(self, params):
            return [1, 2]

        def rows(self, params):
            yield (1,)

    with pytest.raises(InvalidGenerator, match="partition=None"):
        Broken.check_declaration()


# -- S3 ------------------------------------------------------------------------------------
def etag(endpoint, bucket, key):
    return s3_client(endpoint).head_object(Bucket=bucket, Key=key)["ETag"]


def test_s3_parts_of_5_mib_are_joined_by_server_side_copies(
    user, part_messages, s3_endpoint, s3_reports
):
    text = "x" * 1000  # rows of about 1 kB: 2 parts of about 6 MiB
    whole = run_all(numbers(user, 0, count=12_000, text=text), part_messages)
    split = run_all(numbers(user, 2, count=12_000, text=text), part_messages)

    assert file_bytes(split) == file_bytes(whole)
    # A multipart upload's ETag ends in "-<parts>": the copy was UploadPartCopy.
    assert etag(s3_endpoint, s3_reports, split.result_file.name).endswith('-2"')


def test_s3_parts_under_5_mib_are_streamed_through_the_worker(
    user, part_messages, s3_endpoint, s3_reports
):
    whole = run_all(numbers(user, 0), part_messages)
    split = run_all(numbers(user, 3), part_messages)
    assert file_bytes(split) == file_bytes(whole)
    assert "-" not in etag(s3_endpoint, s3_reports, split.result_file.name)


def test_an_assembly_step_nobody_sent_is_sent_by_the_sweeper(user, part_messages, monkeypatch):
    report = start(numbers(user, 2))
    monkeypatch.setattr(
        "django_async_reports.services.outbox.send", lambda report, step, **kw: False
    )
    for message in part_messages:
        services.run_part(*message)
    report.refresh_from_db()
    assert report.next_step == "assemble"  # recorded, never sent (the process died, say)
    monkeypatch.undo()

    sent = []
    monkeypatch.setattr(
        "django_async_reports.services.publishing.publish_step",
        lambda report, step, countdown=None: sent.append(step),
    )
    assert services.sweep(timezone.now() + timedelta(minutes=5)).sent == 1
    assert sent == ["assemble"]


def test_a_part_never_takes_the_name_of_the_reports_file(user, part_messages):
    report = numbers(user, 2, title="part.00001.1")  # slugified: "part000011"
    run = start(report).attempt
    services.run_part(*part_messages[1])
    part = ReportPart.objects.get(report=report, index=1)
    assert part.file_name == f"reports/{user.pk}/{report.pk}/{run}/part.00001.1.csv"
    services.run_part(*part_messages[0])
    services.assemble(report.pk)
    report.refresh_from_db()
    assert report.result_file.name.endswith(f"/{run}/part000011.csv")
