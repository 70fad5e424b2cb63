"""The health and metrics endpoints over HTTP, with a real worker on the real services."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from django_async_reports.conf import report_settings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_health_and_metrics_after_a_report(worker, alice, live_server):
    rid = alice.create(report_type="numbers", title="Counted", parameters={"count": 7})["id"]
    assert alice.wait_finished(rid)["status"] == "completed"

    health = requests.get(f"{live_server.url}/ops/health/", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    assert all(check["ok"] for check in health.json()["checks"].values())

    response = requests.get(f"{live_server.url}/ops/metrics/", timeout=10)
    assert response.status_code == 200, response.text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    prefix = "django_async_reports_"
    key = (prefix + "reports", (("report_type", "numbers"), ("status", "completed")))
    assert samples[key] == 1
    assert samples[(prefix + "report_rows_gsum", ())] == 7
    assert samples[(prefix + "generation_duration_seconds_gcount", ())] == 1
    assert samples[(prefix + "source_up", (("source", "broker"),))] == 1
    # The worker consumes both report queues, and has left nothing ready in them.
    for queue in (report_settings.QUEUE, report_settings.HIGH_PRIORITY_QUEUE):
        assert samples[(prefix + "queue_consumers", (("queue", queue),))] >= 1
        assert samples[(prefix + "queue_messages", (("queue", queue),))] == 0
