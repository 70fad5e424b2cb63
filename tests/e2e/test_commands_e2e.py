"""The operators' commands against a real worker, broker and database.

``generate_report --wait --output`` requests a report, follows it while a real
worker builds it and writes its file; ``queues`` reads the real queues'
depth and consumers with a passive declare.
"""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.management import call_command

from django_async_reports.conf import report_settings
from django_async_reports.models import Report
from tests.factories import UserFactory
from tests.helpers import csv_rows, expected_rows
from tests.worker import purge_queues, queue_message_counts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_generate_report_waits_for_the_worker_and_writes_the_file(worker, tmp_path):
    UserFactory(username="carol")
    target = tmp_path / "numbers.csv"
    out, err = run(
        "generate_report",
        "--type=numbers",
        "--user=carol",
        "--param=count=40",
        "--param=delay=0.05",
        "--param=text=a&b",
        f"--output={target}",
        "--interval=0.1",
        "--timeout=60",
        "--json",
    )
    data = json.loads(out)
    report = Report.objects.get(pk=data["id"])
    assert report.status == Report.Status.COMPLETED
    assert (data["status"], data["row_count"], data["output"]) == ("completed", 40, str(target))
    assert csv_rows(target.read_bytes()) == expected_rows(40)
    # The bar followed the run: rows and a rate were shown while it processed.
    bars = err.strip().splitlines()
    assert any("processing" in line and " rows  " in line and "rows/s" in line for line in bars)
    assert bars[-1].startswith("[" + "#" * 30 + "] 100%")

    shown = json.loads(run("reports", "show", str(report.pk), "--json")[0])
    assert (shown["status"], shown["row_count"]) == ("completed", 40)


def test_generate_report_text_output_and_gzip(worker, tmp_path):
    UserFactory(username="dave")
    out, _ = run(
        "generate_report",
        "--type=numbers",
        "--user=dave",
        "--param=count=3",
        "--param=text=a&b",
        "--compress",
        f"--output={tmp_path}",
        "--no-progress",
        "--timeout=60",
    )
    report = Report.objects.get()
    written = tmp_path / report.result_file.name.rsplit("/", 1)[-1]
    assert written.name.endswith(".csv.gz")
    assert f"Report {report.pk} completed: 3 row(s). Written to {written}." in out
    assert csv_rows(gzip.decompress(written.read_bytes())) == expected_rows(3)


def test_queues_shows_depth_with_no_consumer(workers, django_db_blocker):
    workers.stop()  # nobody consumes: the messages stay in the queues
    purge_queues()
    owner = UserFactory(username="erin")
    try:
        for priority in ("normal", "normal", "low", "urgent"):
            run("generate_report", "--type=numbers", "--user=erin", f"--priority={priority}")
        data = json.loads(run("queues", "--json")[0])
        queues = {queue["name"]: queue for queue in data["queues"]}
        assert queues[report_settings.QUEUE] == {
            "name": report_settings.QUEUE,
            "exists": True,
            "messages": 3,
            "consumers": 0,
        }
        high = queues[report_settings.HIGH_PRIORITY_QUEUE]
        assert (high["messages"], high["consumers"]) == (1, 0)
        assert data["reports"] == {"pending": 4, "processing": 0}
        assert queue_message_counts() == {
            report_settings.QUEUE: 3,
            report_settings.HIGH_PRIORITY_QUEUE: 1,
        }
        out, err = run("queues")
        assert f"{report_settings.QUEUE:32}         3          0" in out
        assert "Messages wait in a queue no worker consumes." in err
    finally:
        purge_queues()
        Report.objects.filter(user=owner).delete()


def test_queues_counts_the_worker_as_consumer(worker):
    data = json.loads(run("queues", "--json")[0])
    for queue in data["queues"]:
        assert queue["exists"] is True
        assert queue["consumers"] == 1, data
