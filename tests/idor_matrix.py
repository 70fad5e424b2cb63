"""The IDOR matrix's parts, shared by ``tests/test_idor.py`` and its HTTP twin in ``tests/e2e``.

* :func:`api_routes`: every route of ``django_async_reports.urls``, read from the URL
  resolver (nested includes too) with the HTTP methods its viewset accepts, so that a
  route added later is in the matrix without anyone listing it;
* :func:`build_world`: one user's reports in every status, schedules and executions, as
  the target of another user's requests;
* :func:`snapshot`: everything a request could change (every row of the package's
  models, the stored files, the progress cache), to compare before and after.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.apps import apps
from django.db.models import Model
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from django_filters import BooleanFilter, ChoiceFilter, MultipleChoiceFilter
from django_filters.rest_framework import DjangoFilterBackend

from django_async_reports import progress, schedules, services
from django_async_reports import urls as package_urls
from django_async_reports.conf import report_settings
from django_async_reports.models import Report, ReportSchedule, ScheduleExecution
from django_async_reports.storage import get_report_storage
from tests.factories import ReportFactory
from tests.helpers import make_report_execution, run_report

#: Every method a client can send; a route refuses those its viewset does not map (405).
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
WRITE_METHODS = ("POST", "PUT", "PATCH")

#: Ids that name nothing: unknown, or not even a UUID. A 404, never a 500.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
MALFORMED_IDS = (
    "not-a-uuid",
    "0",
    "-1",
    "1e9",
    UNKNOWN_ID + "0",
    UNKNOWN_ID.replace("-", "")[:31],
    "' OR '1'='1",
    "%00",
    "\x00",
    "null",
    "x" * 300,
)

#: Whose row is it: the lookup from each model of the package to its owner. A new model
#: without one makes :func:`snapshot` fail, so nobody forgets to say who owns its rows.
OWNER_LOOKUPS = {
    "django_async_reports.report": "user",
    "django_async_reports.reportschedule": "owner",
    "django_async_reports.scheduleexecution": "schedule__owner",
    "django_async_reports.webhookdelivery": "report__user",
    "django_async_reports.reportpart": "report__user",
}


# -- routes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """One URL pattern of the API, as the resolver sees it."""

    name: str  # "report-detail", "schedule-run-now"...
    namespace: str  # "django_async_reports"
    regex: str
    view: Any  # the view function the resolver calls
    kwargs: tuple[str, ...]  # the URL's arguments ("pk"...)

    def __str__(self) -> str:
        return self.name

    @property
    def viewset(self) -> type | None:
        """The DRF viewset behind the route; None for a view that is not one."""
        return getattr(self.view, "cls", None)

    @property
    def actions(self) -> Mapping[str, str]:
        """HTTP method (lower case) -> viewset action, as the router bound them."""
        return getattr(self.view, "actions", None) or {}

    @property
    def detail(self) -> bool:
        """True for a route about one object (its URL names it)."""
        return bool(self.kwargs)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods the route answers other than with a 405, as DRF dispatches them.

        ``HEAD`` is served by the ``get`` action, ``OPTIONS`` by DRF's metadata.
        """
        mapped = {method.upper() for method in self.actions}
        if "GET" in mapped:
            mapped.add("HEAD")
        if self.viewset is not None:
            mapped.add("OPTIONS")
        return tuple(m for m in ALL_METHODS if m in mapped)

    @property
    def model(self) -> type[Model] | None:
        """The model whose objects the route's ``pk`` names (the viewset's queryset model)."""
        viewset = self.viewset
        if viewset is None:
            return None
        queryset = getattr(viewset, "queryset", None)
        if queryset is not None:
            return queryset.model
        serializer_class = getattr(viewset, "serializer_class", None)
        meta = getattr(serializer_class, "Meta", None)
        return getattr(meta, "model", None)

    def url(self, **kwargs: Any) -> str:
        return reverse(f"{self.namespace}:{self.name}", kwargs=kwargs)

    def url_with_raw_id(self, raw_id: str, **kwargs: Any) -> str:
        """The URL with ``pk`` replaced by ``raw_id``, whether its pattern accepts it or not."""
        url = self.url(**{**kwargs, "pk": UNKNOWN_ID})
        return url.replace(UNKNOWN_ID, quote(raw_id, safe=""))


def api_routes() -> list[Route]:
    """Every route of ``django_async_reports.urls``, nested includes too, in URLconf order."""
    return list(_walk(package_urls.urlpatterns, package_urls.app_name, "", ()))


def _walk(
    patterns: Any, namespace: str, prefix: str, outer_kwargs: tuple[str, ...]
) -> Iterator[Route]:
    for pattern in patterns:
        regex = pattern.pattern.regex
        kwargs = outer_kwargs + tuple(regex.groupindex)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, inner, prefix + regex.pattern, kwargs)
        elif isinstance(pattern, URLPattern):
            yield Route(
                name=pattern.name or "",
                namespace=namespace,
                regex=prefix + regex.pattern,
                view=pattern.callback,
                kwargs=kwargs,
            )


# -- one user's objects --------------------------------------------------------------
@dataclass
class World:
    """A user's objects in every state another user's request could act on."""

    owner: Any
    marker: str  # in titles, parameters and errors: never in another user's answers
    idempotency_key: str
    request: dict[str, Any]  # the body of the POST that made ``reports["pending"]``
    reports: dict[str, Report] = field(default_factory=dict)  # by status
    schedules: list[ReportSchedule] = field(default_factory=list)
    executions: list[ScheduleExecution] = field(default_factory=list)

    def objects_of(self, model: type[Model] | None) -> list[Model]:
        by_model: dict[Any, list[Any]] = {
            Report: list(self.reports.values()),
            ReportSchedule: self.schedules,
            ScheduleExecution: self.executions,
        }
        return by_model.get(model, [])

    @property
    def ids(self) -> set[str]:
        """Every object's id, as the API writes it."""
        objects = [*self.reports.values(), *self.schedules, *self.executions]
        return {str(o.pk) for o in objects}

    @property
    def secrets(self) -> list[str]:
        """Strings only the owner may ever read: UUIDs, the marker, the webhook secrets."""
        uuids = [str(o.pk) for o in [*self.reports.values(), *self.schedules]]
        webhook = [s.webhook_secret for s in self.schedules if s.webhook_secret]
        return [self.marker, *uuids, *webhook]


def build_world(owner: Any, marker: str) -> World:
    """``owner``'s reports (one per status, the completed one with its file), two
    schedules (one with a webhook and its secret) and their executions.

    Publishing is the caller's business: capture it (``captured_dispatches``).
    """
    params = {"count": 2, "delay": 0.0, "text": marker}
    request = {"report_type": "numbers", "title": "Numbers", "parameters": params}
    key = f"{marker}-{uuid.uuid4()}"
    world = World(owner=owner, marker=marker, idempotency_key=key, request=request)

    # Through the service, as the API makes them: a fingerprint, and a key to replay.
    pending = services.request_or_reuse_report(user=owner, idempotency_key=key, **request).report
    completed = run_report(
        services.request_report(user=owner, **{**request, "title": f"{marker} done"}),
        notify=False,
    )
    assert completed.status == Report.Status.COMPLETED and completed.result_file
    processing = ReportFactory(
        user=owner,
        title=f"{marker} running",
        parameters=params,
        status=Report.Status.PROCESSING,
        progress=40,
        started_at=timezone.now(),
    )
    progress.write_cache(processing.pk, status="processing", progress=60, message=marker)
    failed = ReportFactory(
        user=owner,
        title=f"{marker} failed",
        parameters=params,
        status=Report.Status.FAILED,
        error_message=f"RuntimeError: {marker}",
        priority=Report.Priority.HIGH,
    )
    cancelled = ReportFactory(
        user=owner,
        title=f"{marker} cancelled",
        parameters=params,
        status=Report.Status.CANCELLED,
        priority=Report.Priority.LOW,
    )
    world.reports = {
        "pending": pending,
        "processing": processing,
        "completed": completed,
        "failed": failed,
        "cancelled": cancelled,
    }

    daily = schedules.create_schedule(
        owner=owner,
        report_type="numbers",
        title=f"{marker} daily",
        frequency="daily",
        parameters=params,
        send_email=True,
        email_recipients=[f"{marker}@example.com"],
    )
    weekly = schedules.create_schedule(
        owner=owner,
        report_type="numbers",
        title=f"{marker} weekly",
        frequency="weekly",
        weekday=2,
        parameters=params,
        enabled=False,
        webhook_url=f"https://93.184.215.14/hooks/{marker}",
    )
    assert weekly.webhook_secret
    world.schedules = [daily, weekly]
    world.executions = [
        make_report_execution(daily, completed, status=ScheduleExecution.Status.COMPLETED),
        ScheduleExecution.objects.create(
            schedule=weekly,
            due_at=timezone.now() - datetime.timedelta(days=1),
            trigger=ScheduleExecution.Trigger.MANUAL,
            status=ScheduleExecution.Status.FAILED,
            error=f"RuntimeError: {marker}",
        ),
    ]
    for obj in [*world.reports.values(), *world.schedules]:
        obj.refresh_from_db()
    return world


# -- what a request could change -------------------------------------------------------
def snapshot(owner: Any = None) -> dict[str, Any]:
    """Every row of the package's models (``owner``'s only, if given), the stored files
    and the reports' cached progress: equal before and after means nothing changed."""
    state: dict[str, Any] = {}
    for model in apps.get_app_config("django_async_reports").get_models():
        label = model._meta.label_lower
        assert label in OWNER_LOOKUPS, (
            f"{label} has no entry in OWNER_LOOKUPS (tests/idor_matrix.py): say whose rows "
            "they are, so that the IDOR matrix can tell whether another user changed them."
        )
        rows = model._default_manager.all()
        if owner is not None:
            rows = rows.filter(**{OWNER_LOOKUPS[label]: owner})
        state[label] = list(rows.order_by("pk").values())
    reports = Report.objects.all() if owner is None else Report.objects.filter(user=owner)
    state["progress cache"] = {
        str(pk): progress.read_cache(pk) for pk in reports.values_list("pk", flat=True)
    }
    state["files"] = stored_files()
    return state


def stored_files() -> dict[str, tuple[int, int]]:
    """Path -> (size, mtime) of every file in the report storage (a local one)."""
    location = getattr(get_report_storage(), "location", None)
    if not location or not os.path.isdir(location):
        return {}
    root = Path(location)
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two snapshots, one line per part (empty when nothing did)."""
    return [
        f"{part}: {json.dumps(before.get(part), default=str)[:600]}\n"
        f"  -> {json.dumps(after.get(part), default=str)[:600]}"
        for part in sorted(set(before) | set(after))
        if before.get(part) != after.get(part)
    ]


# -- the matrix: how to call each route -------------------------------------------
#: The URL arguments other than ``pk`` a nested route may take, each read from the
#: object the route names (say ``"schedule_pk": lambda execution: execution.schedule_id``).
#: A route with an argument missing here fails the matrix until it is added.
URL_KWARGS: dict[str, Callable[[Any], Any]] = {}


def url_kwargs(route: Route, obj: Any) -> dict[str, Any]:
    """The URL arguments of ``route`` naming ``obj``."""
    values = {name: URL_KWARGS[name](obj) for name in route.kwargs if name != "pk"}
    return {**values, "pk": obj.pk} if "pk" in route.kwargs else values


Body = dict[str, Any] | Callable[[World], dict[str, Any]]

#: The body of each write, one the owner's request succeeds with (the owner control
#: checks that it does): only ownership can then explain a refusal. A callable gets the
#: target's world. Every (route, write method) must be here.
BODIES: dict[tuple[str, str], Body] = {
    # The very request of Alice's pending report: a reuse, join or Idempotency-Key
    # replay that forgot the user would hand Bob her report.
    ("report-list", "POST"): lambda world: dict(world.request),
    ("report-cancel", "POST"): {},
    ("report-regenerate", "POST"): {},
    ("schedule-list", "POST"): {
        "report_type": "numbers",
        "title": "Taken over",
        "frequency": "daily",
        "parameters": {"count": 1},
    },
    ("schedule-detail", "PUT"): {
        "report_type": "numbers",
        "title": "Taken over",
        "frequency": "weekly",
        "weekday": 4,
        "parameters": {"count": 1},
        "enabled": True,
    },
    ("schedule-detail", "PATCH"): {"title": "Taken over", "enabled": True},
    ("schedule-run-now", "POST"): {},
    ("schedule-toggle", "POST"): {"enabled": True},
}

#: Fields a create body adds to claim another user's identity: the server must ignore them.
CLAIMS = ("user", "owner", "user_id", "owner_id")


def body_for(route: Route, method: str, world: World) -> dict[str, Any] | None:
    body = BODIES.get((route.name, method))
    if body is None:
        return None
    return body(world) if callable(body) else dict(body)


def list_queries(route: Route, world: World) -> list[str]:
    """Query strings for a list route: each filter with each choice and with each value
    ``world``'s objects have (just around them, for dates), each ordering both ways,
    the largest page."""
    queries = ["", f"?page_size={report_settings.MAX_PAGE_SIZE}"]
    objects = world.objects_of(route.model)
    view = route.viewset()  # type: ignore[misc]
    filterset_class = DjangoFilterBackend().get_filterset_class(
        view, route.model._default_manager.all()
    )
    for name, filter_ in (filterset_class.base_filters if filterset_class else {}).items():
        values: list[Any] = []
        if isinstance(filter_, (ChoiceFilter, MultipleChoiceFilter)):
            values += [choice for choice, _ in filter_.extra.get("choices", [])]
        if isinstance(filter_, BooleanFilter):
            values += [True, False]
        for obj in objects:
            value = getattr(obj, filter_.field_name, None)
            if value is not None:
                values.append(value)
                if hasattr(value, "tzinfo"):
                    values += [value.replace(microsecond=0), value.replace(second=0)]
        queries += sorted({"?" + urlencode({name: query_value(v)}) for v in values})
    for ordering in getattr(route.viewset, "ordering_fields", None) or []:
        queries += [f"?ordering={ordering}", f"?ordering=-{ordering}"]
    if getattr(route.viewset, "search_fields", None):
        queries.append(f"?search={world.marker}")
    return queries


def leaked(text: str, world: World) -> list[str]:
    """The strings of ``world`` that only its owner may read, found in ``text``."""
    return [secret for secret in world.secrets if secret in text]


def listed_ids(body: Any) -> set[str]:
    """The ``id`` of each item of a list answer, paginated or not."""
    items = body.get("results", []) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return set()
    return {str(item["id"]) for item in items if isinstance(item, dict) and "id" in item}


def query_value(value: Any) -> str:
    """A Python value as a query string writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)
