"""Erasure end to end: a real worker writes to S3 (moto server), then a user is deleted.

The user's objects go once the delete commits, another user's stay and can
still be downloaded; a report still running when its user is deleted leaves
nothing behind either (its run stops, and a file it stored is deleted by the
run itself, its row being gone).
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.e2e.conftest import wait_for
from tests.s3_server import create_private_bucket, delete_bucket, list_keys, s3_storage_settings
from tests.worker import celery_worker, purge_queues

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_deleting_a_user_deletes_their_objects_and_only_theirs(
    workers, s3_endpoint, alice, bob, settings, django_db_blocker
):
    bucket = create_private_bucket(s3_endpoint)
    alias = s3_storage_settings(s3_endpoint, bucket)
    settings.STORAGES = {**settings.STORAGES, "s3": alias}
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE": "s3"}
    env = {
        "ASYNC_REPORTS_TEST_S3_STORAGE": json.dumps(alias),
        "ASYNC_REPORTS_TEST_OVERRIDES": json.dumps({"STORAGE": "s3"}),
    }
    with django_db_blocker.unblock():
        workers.stop()  # the shared worker writes to the local disk
        purge_queues()
    alice_prefix = f"reports/{alice.user.pk}/"
    bob_prefix = f"reports/{bob.user.pk}/"
    try:
        with celery_worker(concurrency=2, name="erasure", env=env):
            finished = [
                alice.create(report_type="numbers", parameters={"count": 5}, format=fmt)["id"]
                for fmt in ("csv", "xlsx")
            ]
            kept = bob.create(report_type="numbers", parameters={"count": 5})["id"]
            for rid in finished:
                assert alice.wait_finished(rid)["status"] == "completed"
            assert bob.wait_finished(kept)["status"] == "completed"
            # A slow one (40 rows, 0.1 s each) still running when alice is deleted.
            running = alice.create(report_type="numbers", parameters={"count": 40, "delay": 0.1})[
                "id"
            ]
            alice.wait_processing(running)
            assert len(list_keys(s3_endpoint, bucket, alice_prefix)) == 2

            alice.user.delete()

            assert list_keys(s3_endpoint, bucket, alice_prefix) == []
            # The run stops at its next progress check and stores nothing; wait
            # past the time it would have taken, then look again.
            time.sleep(5)
            assert list_keys(s3_endpoint, bucket, alice_prefix) == []
            # Bob's object is still there and still downloads.
            assert len(list_keys(s3_endpoint, bucket, bob_prefix)) == 1
            response = bob.get(f"{kept}/download/", allow_redirects=False)
            assert response.status_code == 302, response.text
            fetched = wait_for(
                lambda: requests.get(response.headers["Location"], timeout=10), timeout=10
            )
            assert fetched.status_code == 200
            assert fetched.content.startswith(b"n,square,text")
    finally:
        delete_bucket(s3_endpoint, bucket)
