"""The IDOR matrix: no route of the API lets a user reach another user's objects.

The routes come from the URL resolver (:func:`tests.idor_matrix.api_routes`), not from a
list written here: a route added later is attacked by every test below, or fails
``test_every_route_is_in_the_matrix`` until the matrix knows how to call it.

Alice (``user``, ``auth_client``) owns reports in every status, schedules and executions;
Bob (``other_user``, ``other_client``) owns the same kinds of objects and attacks hers with
every method of every route. Each attack must answer exactly what an id that exists
nowhere answers (404, or 405 for a method the route refuses), change nothing (rows,
files, cached progress), publish nothing, send no signal; and the same request by Alice
must succeed, so that the 404 is ownership and not a route broken for everybody.
The same holds over real HTTP in ``tests/e2e/test_idor_e2e.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.dispatch import Signal
from rest_framework.test import APIClient

from django_async_reports import signals
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from tests.helpers import set_reports
from tests.idor_matrix import (
    ALL_METHODS,
    BODIES,
    CLAIMS,
    MALFORMED_IDS,
    OWNER_LOOKUPS,
    UNKNOWN_ID,
    URL_KWARGS,
    WRITE_METHODS,
    Route,
    World,
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

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_throttles")]


ROUTES = api_routes()
DETAIL_ROUTES = [r for r in ROUTES if r.detail]
COLLECTION_ROUTES = [r for r in ROUTES if not r.detail]

#: The routes the package has today: the introspection must find at least these.
KNOWN_ROUTES = {
    "report-list",
    "report-types",
    "report-recent",
    "report-detail",
    "report-progress",
    "report-download",
    "report-cancel",
    "report-regenerate",
    "schedule-list",
    "schedule-detail",
    "schedule-run-now",
    "schedule-toggle",
    "schedule-executions",
}

#: The models whose objects ``build_world`` makes (what a route's ``pk`` may name).
WORLD_MODELS = (Report, ReportSchedule, ScheduleExecution)


def cases(routes: list[Route], methods: Callable[[Route], tuple[str, ...]]) -> list[Any]:
    return [pytest.param(r, m, id=f"{m} {r.name}") for r in routes for m in methods(r)]


def send(client: APIClient, method: str, url: str, body: Any = None, **headers: Any) -> Any:
    data = json.dumps(body) if body is not None else ""
    response = client.generic(method, url, data, content_type="application/json", **headers)
    if getattr(response, "streaming", False):
        # Read and close a streamed file (not response.close(), which would
        # send request_finished and close the test's database connection).
        response.content_read = b"".join(response.streaming_content)
        for closer in response._resource_closers:
            closer()
    return response


def answer(response: Any) -> tuple[int, Any]:
    """Status and body: what a client learns from a response."""
    content = getattr(response, "content_read", None)
    if content is None:
        content = response.content
    try:
        return response.status_code, json.loads(content)
    except ValueError:
        return response.status_code, content


def text_of(response: Any) -> str:
    content = getattr(response, "content_read", None)
    if content is None:
        content = response.content
    return content.decode("utf-8", "replace")


# -- fixtures ---------------------------------------------------------------------------
def forget(dispatches: Any) -> None:
    """Drop what building the worlds published: the tests count what requests publish."""
    dispatches.clear()
    dispatches.steps.clear()


@pytest.fixture
def alice(user, captured_dispatches) -> World:
    """The target: Alice's objects."""
    world = build_world(user, "alice-private")
    forget(captured_dispatches)
    return world


@pytest.fixture
def bob(other_user, alice, captured_dispatches) -> World:
    """The attacker's own objects, so that his lists have something to show."""
    world = build_world(other_user, "bob-own")
    forget(captured_dispatches)
    return world


class SideEffects:
    """What requests set in motion: on-commit callbacks, published steps, signals."""

    def __init__(self, dispatches: Any, capture_on_commit: Any) -> None:
        self.dispatches = dispatches
        self.capture_on_commit = capture_on_commit
        self.callbacks: list[Any] = []
        self.signals: list[tuple[str, Any]] = []

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Record the effects of the requests in the block; on-commit callbacks do run."""
        package_signals = {
            name: value for name, value in vars(signals).items() if isinstance(value, Signal)
        }
        receivers = {}
        for name, signal in package_signals.items():

            def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
                self.signals.append((_name, kwargs.get("report")))

            receivers[name] = receiver
            signal.connect(receiver, weak=False)
        try:
            with self.capture_on_commit(execute=True) as callbacks:
                yield
            self.callbacks = list(callbacks)
        finally:
            for name, signal in package_signals.items():
                signal.disconnect(receivers[name])

    def assert_none(self) -> None:
        assert self.callbacks == [], "a request queued work to run on commit"
        assert list(self.dispatches) == [] and self.dispatches.steps == [], "a step was published"
        assert self.signals == [], f"signals were sent: {self.signals}"


@pytest.fixture
def side_effects(captured_dispatches, django_capture_on_commit_callbacks) -> SideEffects:
    return SideEffects(captured_dispatches, django_capture_on_commit_callbacks)


# -- the matrix covers every route --------------------------------------------------------
def test_every_route_is_in_the_matrix():
    names = {route.name for route in ROUTES}
    assert names >= KNOWN_ROUTES, f"the resolver walk lost routes: {KNOWN_ROUTES - names}"

    problems = []
    for route in ROUTES:
        where = f"route {route.name or '(unnamed)'} ({route.regex})"
        if route.viewset is None or not route.actions:
            problems.append(f"{where} is not a DRF viewset route: the matrix cannot read it")
            continue
        if route.model not in WORLD_MODELS:
            problems.append(f"{where} works on {route.model}, which build_world does not make")
        for name in set(route.kwargs) - {"pk"} - set(URL_KWARGS):
            problems.append(f"{where} takes the URL argument {name!r}: add it to URL_KWARGS")
        for method in route.methods:
            if method in WRITE_METHODS and (route.name, method) not in BODIES:
                problems.append(f"{where} is not in the matrix: add the body of its {method}")
            if not route.detail and method not in ("GET", "HEAD", "OPTIONS", "POST"):
                problems.append(f"{where} takes {method} on a collection: the matrix has no test")
    routes = {(route.name, method) for route in ROUTES for method in route.methods}
    problems += [
        f"BODIES has {key}, which is no route: remove it" for key in BODIES if key not in routes
    ]
    assert not problems, "\n".join(problems)


# -- one object of another user ------------------------------------------------------------
def attack(route: Route, method: str, world: World, client: APIClient, body: Any) -> list[Any]:
    """``method`` on each of ``world``'s objects that ``route`` names, then on an unknown
    id, by ``client``: each answer must be that of the unknown id (no oracle of existence)."""
    targets = world.objects_of(route.model)
    assert targets, f"build_world makes no {route.model} to attack {route}"
    unknown_url = route.url_with_raw_id(UNKNOWN_ID, **url_kwargs(route, targets[0]))
    attacks = [send(client, method, route.url(**url_kwargs(route, o)), body) for o in targets]
    unknown = send(client, method, unknown_url, body)
    for obj, response in zip(targets, attacks, strict=True):
        assert answer(response) == answer(unknown), (method, route.name, obj, answer(response))
        assert not leaked(text_of(response), world), (method, route.name, obj)
    return [unknown, *attacks]


@pytest.mark.parametrize(("route", "method"), cases(DETAIL_ROUTES, lambda r: r.methods))
def test_another_users_object_is_a_404_and_stays_untouched(
    route, method, alice, bob, other_client, auth_client, side_effects
):
    body = body_for(route, method, alice)
    before = snapshot()

    with side_effects.watch():
        responses = attack(route, method, alice, other_client, body)

    # OPTIONS is DRF's metadata, the same whether the object exists or not.
    expected = 200 if method == "OPTIONS" else 404
    assert {r.status_code for r in responses} == {expected}
    side_effects.assert_none()
    assert differences(before, snapshot()) == []

    # The control: the same request by Alice works, on at least one of her objects.
    codes = [
        send(auth_client, method, route.url(**url_kwargs(route, obj)), body).status_code
        for obj in alice.objects_of(route.model)
    ]
    assert any(200 <= code < 400 for code in codes), (
        f"Alice's own {method} {route} never succeeds ({codes}): "
        "Bob's 404 proves nothing; fix its body in BODIES"
    )


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
def test_methods_a_route_refuses_are_405_whoever_owns_the_object(
    route, alice, bob, other_client, auth_client, side_effects
):
    refused = [m for m in ALL_METHODS if m not in route.methods]
    before = snapshot()
    with side_effects.watch():
        for method in refused:
            body = {"title": "Taken over"} if method in WRITE_METHODS else None
            for client in (other_client, auth_client):
                responses = attack(route, method, alice, client, body)
                assert {r.status_code for r in responses} == {405}, (method, client)
    side_effects.assert_none()
    assert differences(before, snapshot()) == []


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
def test_unknown_and_malformed_ids_are_404(route, alice, auth_client, side_effects):
    others = url_kwargs(route, alice.objects_of(route.model)[0])
    before = snapshot()
    with side_effects.watch():
        for method in route.methods:
            body = body_for(route, method, alice)
            for raw_id in (UNKNOWN_ID, *MALFORMED_IDS):
                response = send(auth_client, method, route.url_with_raw_id(raw_id, **others), body)
                if method == "OPTIONS":
                    # Metadata when the pattern matches, the resolver's 404 when not.
                    assert response.status_code in (200, 404), (method, raw_id, answer(response))
                    assert "PUT" not in json.dumps(answer(response)[1]), (method, raw_id)
                else:
                    assert response.status_code == 404, (method, raw_id, answer(response))
    side_effects.assert_none()
    assert differences(before, snapshot()) == []


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_anonymous_is_401(route, alice, api_client, side_effects):
    targets = alice.objects_of(route.model) if route.detail else [None]
    before = snapshot()
    with side_effects.watch():
        for method in route.methods:
            body = body_for(route, method, alice)
            for obj in targets:
                url = route.url(**(url_kwargs(route, obj) if obj is not None else {}))
                response = send(api_client, method, url, body)
                assert response.status_code == 401, (method, obj, answer(response))
                assert response["WWW-Authenticate"].startswith("Bearer")
                assert not leaked(text_of(response), alice)
    side_effects.assert_none()
    assert differences(before, snapshot()) == []


# -- lists ------------------------------------------------------------------------------
@pytest.mark.parametrize("route", [r for r in COLLECTION_ROUTES if "GET" in r.methods], ids=str)
def test_lists_never_show_another_users_objects(route, alice, bob, other_client, auth_client):
    own = {str(o.pk) for o in bob.objects_of(route.model)}
    queries = list_queries(route, alice)
    for query in queries:
        response = send(other_client, "GET", route.url() + query)
        assert response.status_code == 200, (query, answer(response))
        body = answer(response)[1]
        assert listed_ids(body) <= own, (query, listed_ids(body) - own)
        assert not leaked(text_of(response), alice), (query, leaked(text_of(response), alice))

    # The control: where Alice's unfiltered list shows hers, Bob's shows his.
    if listed_ids(answer(send(auth_client, "GET", route.url()))[1]) & alice.ids:
        assert listed_ids(answer(send(other_client, "GET", route.url()))[1]) & own


# -- creating ----------------------------------------------------------------------------
def owned_by(model: Any, pk: Any, user: Any) -> bool:
    return model._default_manager.filter(
        pk=pk, **{OWNER_LOOKUPS[model._meta.label_lower]: user}
    ).exists()


@pytest.mark.parametrize("route", [r for r in COLLECTION_ROUTES if "POST" in r.methods], ids=str)
def test_creating_never_acts_for_another_user(
    route, alice, bob, other_client, other_user, side_effects, settings
):
    # Reuse on: an identical request is answered with an earlier report, if it is yours.
    set_reports(settings, REUSE_WINDOW_SECONDS=3600)
    victim = alice.objects_of(route.model)[0]
    body = {
        **body_for(route, "POST", alice),
        **{claim: alice.owner.pk for claim in CLAIMS},
        "id": str(victim.pk),
    }
    before = snapshot(owner=alice.owner)

    with side_effects.watch():
        plain = send(other_client, "POST", route.url(), body)
        # Alice's Idempotency-Key replays her request for her only.
        keyed = send(
            other_client, "POST", route.url(), body, HTTP_IDEMPOTENCY_KEY=alice.idempotency_key
        )

    created = []
    for response in (plain, keyed):
        assert response.status_code == 201, answer(response)
        data = response.json()
        assert data["id"] not in alice.ids
        assert data.get("outcome", "created") == "created", data
        assert owned_by(route.model, data["id"], other_user)
        created.append(data["id"])
    assert len(set(created)) == 2
    assert differences(before, snapshot(owner=alice.owner)) == []
    # What was set in motion concerns Bob's new objects only.
    assert all(report.user_id == other_user.pk for report in side_effects.dispatches)
    assert all(
        report is None or report.user_id == other_user.pk for _, report in side_effects.signals
    )
