"""The HTTP contract around a report: who may see it, and what bad requests get back."""

from __future__ import annotations

import pytest

from django_async_reports.models import Report
from tests.factories import ReportFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_another_users_report_is_not_found(worker, alice, bob):
    mine = bob.create(report_type="numbers", title="Bob's", parameters={"count": 2})
    rid = mine["id"]
    assert bob.wait_finished(rid)["status"] == "completed"

    for method, path in [
        ("get", f"{rid}/"),
        ("get", f"{rid}/progress/"),
        ("get", f"{rid}/download/"),
        ("post", f"{rid}/cancel/"),
        ("post", f"{rid}/regenerate/"),
    ]:
        response = getattr(alice, method)(path)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert "Bob" not in response.text

    listing = alice.get()
    assert listing.status_code == 200
    assert listing.json()["count"] == 0
    assert alice.get("recent/").json() == []
    # Nothing happened to it: not cancelled, not regenerated, still Bob's to download.
    assert Report.objects.count() == 1
    assert bob.detail(rid)["status"] == "completed"
    assert bob.get(f"{rid}/download/").status_code == 200
    assert [r["id"] for r in bob.get().json()["results"]] == [rid]


def test_anonymous_requests_are_unauthorised(anonymous, bob):
    rid = str(ReportFactory(user=bob.user).pk)

    requests_ = [
        anonymous.get(),
        anonymous.post(json={"report_type": "numbers", "parameters": {"count": 1}}),
        anonymous.get(f"{rid}/"),
        anonymous.get(f"{rid}/progress/"),
        anonymous.post(f"{rid}/cancel/"),
    ]
    for response in requests_:
        assert response.status_code == 401, (response.request.url, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    bad_token = anonymous.session.get(
        anonymous.url(), headers={"Authorization": "Bearer not-a-token"}, timeout=10
    )
    assert bad_token.status_code == 401
    assert Report.objects.count() == 1  # only Bob's


BAD_REQUESTS = {
    "unknown report type": (
        {"report_type": "payroll", "parameters": {}},
        {"report_type": ['"payroll" is not a known report type.']},
    ),
    "missing report type": (
        {"parameters": {"count": 1}},
        {"report_type": ["This field is required."]},
    ),
    "invalid parameters": (
        {"report_type": "numbers", "parameters": {"count": -1, "delay": "soon"}},
        {
            "parameters": {
                "count": ["Ensure this value is greater than or equal to 0."],
                "delay": ["A valid number is required."],
            }
        },
    ),
    "missing parameters": (
        {"report_type": "sales", "parameters": {"start_date": "2024-12-01"}},
        {"parameters": {"end_date": ["This field is required."]}},
    ),
    "cross-field parameters": (
        {
            "report_type": "sales",
            "parameters": {"start_date": "2024-12-31", "end_date": "2024-12-01"},
        },
        {"parameters": {"end_date": ["Must not be before start_date."]}},
    ),
    "parameters not an object": (
        {"report_type": "numbers", "parameters": [1, 2]},
        {"parameters": ["Expected a JSON object."]},
    ),
    "unknown priority": (
        {"report_type": "numbers", "priority": "asap", "parameters": {"count": 1}},
        {"priority": ['"asap" is not a valid choice.']},
    ),
}


@pytest.mark.parametrize("payload,errors", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_rejected_with_field_messages(alice, payload, errors):
    response = alice.post(json=payload)

    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == set(errors)
    for field, expected in errors.items():
        if field == "report_type" and payload.get("report_type"):
            # The message goes on to list the known types.
            assert len(body[field]) == 1 and body[field][0].startswith(expected[0]), body
            assert "numbers" in body[field][0] and "sales" in body[field][0]
        else:
            assert body[field] == expected, body
    assert not Report.objects.exists()


def test_malformed_json_is_rejected(alice):
    response = alice.post(
        data=b'{"report_type": "numbers", "parameters": {"count": 1',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("JSON parse error")
    assert not Report.objects.exists()
