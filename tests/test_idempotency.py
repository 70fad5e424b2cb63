"""``Idempotency-Key`` on create: a client retrying after a timeout gets no duplicate."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from django_async_reports import services
from django_async_reports.exceptions import IdempotencyKeyReused
from django_async_reports.models import Report
from tests.factories import UserFactory

URL = "/api/v1/reports/"
NUMBERS = {"report_type": "numbers", "parameters": {"count": 3}}

pytestmark = pytest.mark.django_db


def post(client, body, key):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_returns_the_same_report(auth_client, captured_dispatches):
    first = post(auth_client, NUMBERS, "8f14e45f-ceea-467a-9575-9d5f1d4b0c0e")
    again = post(auth_client, NUMBERS, "8f14e45f-ceea-467a-9575-9d5f1d4b0c0e")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert (first.json()["outcome"], again.json()["outcome"]) == ("created", "replayed")
    assert again["Idempotent-Replayed"] == "true"
    assert Report.objects.count() == 1


def test_even_with_force_or_delivery_which_never_reuse(auth_client, captured_dispatches):
    body = {**NUMBERS, "force": True, "send_email": True}
    ids = {post(auth_client, body, "retry-me").json()["id"] for _ in range(3)}
    assert len(ids) == 1 and Report.objects.count() == 1


def test_a_new_key_is_a_new_request(auth_client, captured_dispatches):
    body = {**NUMBERS, "force": True}
    assert post(auth_client, body, "a").json()["id"] != post(auth_client, body, "b").json()["id"]


def test_the_key_with_another_request_is_a_422(auth_client, captured_dispatches):
    assert post(auth_client, NUMBERS, "k1").status_code == 201
    other = post(auth_client, {**NUMBERS, "parameters": {"count": 4}}, "k1")
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert Report.objects.count() == 1


def test_keys_belong_to_their_user(auth_client, other_client, captured_dispatches):
    mine = post(auth_client, NUMBERS, "shared-key").json()
    theirs = post(other_client, NUMBERS, "shared-key")
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine["id"]  # never another user's report


@pytest.mark.parametrize("key", ["x" * 256, "has space", "naïve", "tab\there"])
def test_a_malformed_key_is_a_400_at_the_field(auth_client, captured_dispatches, key):
    response = post(auth_client, NUMBERS, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert Report.objects.count() == 0


def test_the_service_raises_for_another_request(user, captured_dispatches):
    services.request_or_reuse_report(user=user, idempotency_key="k", **NUMBERS)
    with pytest.raises(IdempotencyKeyReused):
        services.request_or_reuse_report(
            user=user, idempotency_key="k", report_type="numbers", parameters={"count": 9}
        )


@pytest.mark.django_db(transaction=True)
def test_the_same_key_at_the_same_moment_makes_one_report(captured_dispatches):
    owner = UserFactory(username="idem-race")
    token, _ = Token.objects.get_or_create(user=owner)
    count = 4
    barrier = threading.Barrier(count)
    answers: list = []

    def request():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
        try:
            barrier.wait()
            response = post(client, {**NUMBERS, "force": True}, "same-moment")
            answers.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == count
    assert {code for code, _id in answers} == {201}
    assert len({rid for _code, rid in answers}) == 1
    assert Report.objects.filter(user=owner).count() == 1
