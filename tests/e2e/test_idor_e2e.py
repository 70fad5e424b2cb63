"""The IDOR matrix over real HTTP: ``live_server``, Bearer tokens, the routes from the resolver.

The in-process matrix (``tests/test_idor.py``) checks each case in detail; this one sends
the same attacks through a real HTTP server and the full middleware stack, every method
of every route, with a sample of the malformed ids and list queries (each HTTP round trip
costs tens of milliseconds here). It needs no worker: nothing is dispatched, which
``captured_dispatches`` checks.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.conftest import Api
from tests.idor_matrix import (
    MALFORMED_IDS,
    UNKNOWN_ID,
    api_routes,
    body_for,
    build_world,
    differences,
    leaked,
    list_queries,
    listed_ids,
    snapshot,
    url_kwargs,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_throttles"),
]


#: A sample of MALFORMED_IDS: not a UUID, a NUL byte, far too long.
SOME_MALFORMED_IDS = ("not-a-uuid", "\x00", MALFORMED_IDS[-1])


def one_per_parameter(queries: list[str]) -> list[str]:
    """The first query string of each query parameter."""
    kept: dict[str, str] = {}
    for query in queries:
        kept.setdefault(query.partition("=")[0], query)
    return list(kept.values())


def send(api: Api, method: str, path: str, body: Any = None) -> requests.Response:
    base = api.root.removesuffix("/api/v1/reports/")
    return api.session.request(method, base + path, json=body, timeout=10)


def test_another_users_objects_over_http(alice, bob, anonymous, captured_dispatches):
    world = build_world(alice.user, "alice-private")
    own = build_world(bob.user, "bob-own")
    captured_dispatches.clear()
    captured_dispatches.steps.clear()
    before = snapshot()
    seen = []

    for route in api_routes():
        targets = world.objects_of(route.model)
        for method in route.methods:
            body = body_for(route, method, world)
            seen.append(f"{method} {route.name}")
            if route.detail:
                urls = [route.url(**url_kwargs(route, obj)) for obj in targets]
                others = url_kwargs(route, targets[0])
                unknown = send(bob, method, route.url_with_raw_id(UNKNOWN_ID, **others), body)
                expected = 200 if method == "OPTIONS" else 404
                assert unknown.status_code == expected, (method, route.name, unknown.text)
                for url in urls:
                    # Bob gets what an id that exists nowhere gets, and nothing of Alice's.
                    response = send(bob, method, url, body)
                    assert (response.status_code, response.text) == (
                        unknown.status_code,
                        unknown.text,
                    ), (method, url, response.text)
                    assert not leaked(response.text, world), (method, url)
                assert send(anonymous, method, urls[0], body).status_code == 401, (method, route)
                if method == next(m for m in route.methods if m != "OPTIONS"):
                    for raw_id in SOME_MALFORMED_IDS:
                        url = route.url_with_raw_id(raw_id, **others)
                        response = send(bob, method, url, body)
                        assert response.status_code == 404, (method, url, response.text)
            elif method == "GET":
                for query in one_per_parameter(list_queries(route, world)):
                    response = send(bob, method, route.url() + query)
                    assert response.status_code == 200, (query, response.text)
                    ids = listed_ids(response.json())
                    assert ids <= {str(o.pk) for o in own.objects_of(route.model)}, query
                    assert not leaked(response.text, world), query
            else:
                # Creating is checked in-process (it dispatches); anonymous gets nothing.
                response = send(anonymous, method, route.url(), body)
                assert response.status_code == 401, (method, route.name, response.text)

    assert "POST schedule-run-now" in seen and "DELETE schedule-detail" in seen
    assert differences(before, snapshot()) == []
    assert list(captured_dispatches) == [] and captured_dispatches.steps == []
    # Alice still reaches all of it.
    for report in world.reports.values():
        assert alice.detail(str(report.pk))["id"] == str(report.pk)
    completed = world.reports["completed"]
    assert send(alice, "GET", f"/api/v1/reports/{completed.pk}/download/").status_code == 200
