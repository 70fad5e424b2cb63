"""Reuse of identical requests: joined while running, reused once completed, formats.

API tests capture dispatches (``captured_dispatches``) and run the on-commit
callbacks of each request (``django_capture_on_commit_callbacks``), so a
request that queues work is seen doing so and one that is reused is seen not to.
"""

import csv
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_async_reports import register, registry, services
from django_async_reports.models import Report
from django_async_reports.writers import CSVWriter, available_formats
from django_async_reports.writers.base import _WRITERS
from tests.factories import UserFactory
from tests.helpers import set_reports
from tests.testapp.reports import NumbersReport

URL = "/api/v1/reports/"
NUMBERS = {"report_type": "numbers", "parameters": {"count": 3}}
SALES = {
    "report_type": "sales",
    "parameters": {"start_date": "2024-12-01", "end_date": "2024-12-31"},
}


@pytest.fixture(autouse=True)
def reuse_window_of_an_hour(settings):
    """tests/settings.py turns reuse off for the other suites; here it is on, at an hour."""
    set_reports(settings, REUSE_WINDOW_SECONDS=3600)


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """POST a report request; on-commit callbacks (the dispatch) run as after a commit."""

    def post(client, payload):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, payload, format="json")

    return post


def complete(report_id):
    """Run the generation and post-processing steps as the worker does."""
    services.generate(services.claim_report(report_id))
    report = services.post_process(report_id)
    assert report.status == Report.Status.COMPLETED
    return report


@pytest.fixture
def make_type():
    """Register temporary report types (subclasses of numbers); unregistered afterwards."""
    registered = []

    def make(report_type, **attrs):
        cls = type(
            f"Temporary_{report_type}", (NumbersReport,), {"report_type": report_type, **attrs}
        )
        register(cls)
        registered.append(report_type)
        return cls

    yield make
    for report_type in registered:
        registry.unregister(report_type)


class TSVWriter(CSVWriter):
    """Tab-separated values; registered by the ``tsv_writer`` fixture only."""

    format = ""  # set by the fixture, so defining the class registers nothing
    extension = "tsv"
    content_type = "text/tab-separated-values; charset=utf-8"
    label = "TSV"

    def __init__(self, fileobj, **kwargs):
        super().__init__(fileobj, **kwargs)
        self._csv = csv.writer(self._text, delimiter="\t")


@pytest.fixture
def tsv_writer():
    """A second installed format, ``testtsv``, for the length of one test."""
    assert "testtsv" not in _WRITERS
    writer = type("TestTSVWriter", (TSVWriter,), {"format": "testtsv"})
    try:
        yield writer
    finally:
        _WRITERS.pop("testtsv", None)


@pytest.fixture
def unavailable_writer():
    """A format whose optional package is not installed."""
    assert "fancytest" not in _WRITERS
    writer = type(
        "FancyWriter",
        (TSVWriter,),
        {"format": "fancytest", "requires": ("no_such_module_for_tests",), "extra": "fancy"},
    )
    try:
        yield writer
    finally:
        _WRITERS.pop("fancytest", None)


# -- joined and reused ---------------------------------------------------------------------
@pytest.mark.django_db
class TestJoinedAndReused:
    def test_identical_request_while_pending_joins_it(self, auth_client, post, captured_dispatches):
        first = post(auth_client, NUMBERS)
        assert first.status_code == 201
        assert first.json()["outcome"] == "created"
        assert len(captured_dispatches) == 1

        second = post(auth_client, NUMBERS)

        assert second.status_code == 200
        body = second.json()
        assert body["outcome"] == "joined"
        assert body["id"] == first.json()["id"]
        assert body["status"] == "pending"
        assert second["Location"].endswith(f"{URL}{body['id']}/")
        assert Report.objects.count() == 1
        assert len(captured_dispatches) == 1  # nothing queued again

    def test_identical_request_while_processing_joins_it(
        self, auth_client, post, captured_dispatches
    ):
        report_id = post(auth_client, NUMBERS).json()["id"]
        services.claim_report(report_id)

        response = post(auth_client, NUMBERS)

        assert response.status_code == 200
        assert response.json()["outcome"] == "joined"
        assert response.json()["status"] == "processing"
        assert response.json()["id"] == report_id
        assert len(captured_dispatches) == 1

    def test_identical_request_after_completion_reuses_it(
        self, auth_client, post, captured_dispatches
    ):
        report_id = post(auth_client, NUMBERS).json()["id"]
        done = complete(report_id)

        response = post(auth_client, NUMBERS)

        assert response.status_code == 200
        body = response.json()
        assert body["outcome"] == "reused"
        assert body["id"] == report_id
        assert body["status"] == "completed"
        assert body["download_url"].endswith(f"{URL}{report_id}/download/")
        assert body["result_data"]["checksum"] == done.result_data["checksum"]
        assert Report.objects.count() == 1
        assert len(captured_dispatches) == 1

    def test_title_and_priority_are_not_part_of_the_identity(
        self, auth_client, post, captured_dispatches
    ):
        report_id = post(auth_client, {**NUMBERS, "title": "Mine"}).json()["id"]
        response = post(auth_client, {**NUMBERS, "title": "Other", "priority": "urgent"})
        assert response.status_code == 200
        assert response.json()["outcome"] == "joined"
        # The joined report keeps its title but takes the more urgent priority.
        assert (response.json()["title"], response.json()["priority"]) == ("Mine", "urgent")
        assert response.json()["id"] == report_id

    def test_newest_identical_report_is_reused(self, user, captured_dispatches):
        older = complete(services.request_report(user=user, **NUMBERS).pk)
        newer = complete(services.request_report(user=user, **NUMBERS).pk)
        assert older.fingerprint == newer.fingerprint
        result = services.request_or_reuse_report(user=user, **NUMBERS)
        assert (result.outcome, result.report.pk) == ("reused", newer.pk)

    def test_running_report_is_joined_before_a_completed_one_is_reused(
        self, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        complete(services.request_report(user=user, **NUMBERS).pk)
        with django_capture_on_commit_callbacks(execute=True):
            running = services.request_report(user=user, **NUMBERS)
        result = services.request_or_reuse_report(user=user, **NUMBERS)
        assert (result.outcome, result.report.pk) == ("joined", running.pk)

    def test_a_report_whose_generation_was_never_sent_is_not_joined(
        self, user, captured_dispatches, django_capture_on_commit_callbacks, monkeypatch
    ):
        def refuse(report, step, *, countdown=None):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)
        with django_capture_on_commit_callbacks(execute=True):
            waiting = services.request_report(user=user, **NUMBERS)
        waiting.refresh_from_db()
        assert (waiting.status, waiting.next_step) == ("pending", "generate")
        assert waiting.progress_message == services.WAITING_FOR_QUEUE
        result = services.request_or_reuse_report(user=user, **NUMBERS)
        # Joining it would tie the request to an outage: a report of its own instead.
        assert result.outcome == "created" and result.report.pk != waiting.pk

    def test_completed_report_without_a_file_is_not_reused(self, user, captured_dispatches):
        done = complete(services.request_report(user=user, **NUMBERS).pk)
        Report.objects.filter(pk=done.pk).update(result_file="")
        result = services.request_or_reuse_report(user=user, **NUMBERS)
        assert result.outcome == "created" and result.report.pk != done.pk


# -- what makes two requests different -----------------------------------------------------
@pytest.mark.django_db
class TestIdentity:
    @pytest.mark.parametrize(
        "change",
        [
            {"parameters": {"count": 4}},
            {"parameters": {"count": 3, "text": "x"}},
            {"compress": True},
            {"format": "testtsv"},
            {"report_type": "raw_text"},
        ],
        ids=["count", "text", "compress", "format", "report_type"],
    )
    def test_different_request_creates_a_report(
        self, auth_client, post, captured_dispatches, tsv_writer, change
    ):
        first = post(auth_client, NUMBERS).json()
        response = post(auth_client, {**NUMBERS, **change})
        assert response.status_code == 201
        assert response.json()["outcome"] == "created"
        assert response.json()["id"] != first["id"]
        assert Report.objects.count() == 2
        assert len(captured_dispatches) == 2

    def test_other_user_gets_a_report_of_their_own(
        self, auth_client, other_client, post, other_user, captured_dispatches
    ):
        first = post(auth_client, NUMBERS).json()
        complete(first["id"])
        response = post(other_client, NUMBERS)
        assert response.status_code == 201
        assert response.json()["outcome"] == "created"
        assert Report.objects.get(pk=response.json()["id"]).user == other_user
        assert len(captured_dispatches) == 2

    @pytest.mark.parametrize(
        "parameters",
        [
            {"end_date": "2024-12-31", "start_date": "2024-12-01"},  # another key order
            {"start_date": "2024-12-1", "end_date": "2024-12-31"},  # no leading zero
        ],
        ids=["key-order", "short-day"],
    )
    def test_equivalent_parameters_are_identical(
        self, auth_client, post, captured_dispatches, parameters
    ):
        first = post(auth_client, SALES).json()
        response = post(auth_client, {"report_type": "sales", "parameters": parameters})
        assert response.status_code == 200
        assert response.json()["outcome"] == "joined"
        assert response.json()["id"] == first["id"]
        assert response.json()["parameters"] == SALES["parameters"]

    def test_defaults_and_types_are_normalised(self, auth_client, post, captured_dispatches):
        first = post(auth_client, NUMBERS).json()
        response = post(
            auth_client,
            {
                "report_type": "numbers",
                "parameters": {"text": "", "delay": 0, "count": "3"},
                "format": "csv",
                "compress": False,
            },
        )
        assert response.status_code == 200
        assert response.json()["id"] == first["id"]
        assert first["parameters"] == {"count": 3, "delay": 0.0, "text": ""}
        assert (first["format"], first["compress"]) == ("csv", False)

    def test_fingerprint_is_stored_and_ignores_key_order(self, user, captured_dispatches):
        report = services.request_report(
            user=user, report_type="sales", parameters=SALES["parameters"], compress=True
        )
        params = {"start_date": "2024-12-01", "end_date": "2024-12-31"}
        reordered = {"end_date": "2024-12-31", "start_date": "2024-12-01"}
        fingerprint = services.report_fingerprint("sales", "csv", True, params)
        assert report.fingerprint == fingerprint
        assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
        assert services.report_fingerprint("sales", "csv", True, reordered) == fingerprint
        others = {
            services.report_fingerprint("sales", "csv", False, params),
            services.report_fingerprint("sales", "xlsx", True, params),
            services.report_fingerprint("numbers", "csv", True, params),
            services.report_fingerprint("sales", "csv", True, {**params, "end_date": "2025-01-01"}),
        }
        assert fingerprint not in others and len(others) == 4

    def test_service_normalises_unvalidated_parameters(
        self, user, captured_dispatches, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            first = services.request_or_reuse_report(
                user=user, report_type="sales", parameters=SALES["parameters"]
            )
        second = services.request_or_reuse_report(
            user=user,
            report_type="sales",
            parameters={"end_date": "2024-12-31", "start_date": "2024-12-1"},
        )
        assert (first.outcome, second.outcome) == ("created", "joined")
        assert second.report.pk == first.report.pk


# -- what never reuses -------------------------------------------------------------------
@pytest.mark.django_db
class TestNeverReused:
    def test_force_creates_a_new_report(self, auth_client, post, captured_dispatches):
        first = post(auth_client, NUMBERS).json()
        complete(first["id"])

        response = post(auth_client, {**NUMBERS, "force": True})

        assert response.status_code == 201
        assert response.json()["outcome"] == "created"
        assert response.json()["id"] != first["id"]
        assert len(captured_dispatches) == 2
        # The forced report is the one later identical requests join.
        joined = post(auth_client, NUMBERS).json()
        assert (joined["outcome"], joined["id"]) == ("joined", response.json()["id"])

    def test_force_while_pending_creates_too(self, auth_client, post, captured_dispatches):
        post(auth_client, NUMBERS)
        response = post(auth_client, {**NUMBERS, "force": True})
        assert response.status_code == 201
        assert Report.objects.count() == 2

    def test_regenerate_always_creates(self, auth_client, post, captured_dispatches):
        first = post(auth_client, NUMBERS).json()
        complete(first["id"])

        response = auth_client.post(f"{URL}{first['id']}/regenerate/")

        assert response.status_code == 201
        assert response.json()["id"] != first["id"]
        assert response.json()["parameters"] == first["parameters"]
        assert Report.objects.count() == 2

    def test_outside_the_window_creates(self, auth_client, post, settings, captured_dispatches):
        set_reports(settings, REUSE_WINDOW_SECONDS=60)
        report_id = post(auth_client, NUMBERS).json()["id"]
        complete(report_id)
        Report.objects.filter(pk=report_id).update(
            completed_at=timezone.now() - timedelta(seconds=30)
        )
        assert post(auth_client, NUMBERS).json()["outcome"] == "reused"

        Report.objects.filter(pk=report_id).update(
            completed_at=timezone.now() - timedelta(seconds=120)
        )
        response = post(auth_client, NUMBERS)

        assert response.status_code == 201
        assert response.json()["outcome"] == "created"
        assert response.json()["id"] != report_id
        assert len(captured_dispatches) == 2

    def test_expired_report_is_not_reused(self, auth_client, post, captured_dispatches):
        report_id = post(auth_client, NUMBERS).json()["id"]
        complete(report_id)
        Report.objects.filter(pk=report_id).update(expires_at=timezone.now())

        response = post(auth_client, NUMBERS)

        assert response.status_code == 201
        assert response.json()["id"] != report_id

    @pytest.mark.parametrize("end", ["failed", "cancelled"])
    def test_failed_or_cancelled_report_is_not_reused(
        self, auth_client, post, captured_dispatches, end
    ):
        report_id = post(auth_client, NUMBERS).json()["id"]
        if end == "failed":
            services.fail_report(report_id, "the data source is down")
        else:
            services.cancel_report(Report.objects.get(pk=report_id))
        assert Report.objects.get(pk=report_id).status == end

        response = post(auth_client, NUMBERS)

        assert response.status_code == 201
        assert response.json()["outcome"] == "created"
        assert response.json()["id"] != report_id

    def test_window_of_zero_disables_reuse_and_joining(
        self, auth_client, post, settings, captured_dispatches
    ):
        set_reports(settings, REUSE_WINDOW_SECONDS=0)
        first = post(auth_client, NUMBERS)
        second = post(auth_client, NUMBERS)
        complete(first.json()["id"])
        third = post(auth_client, NUMBERS)
        assert [r.status_code for r in (first, second, third)] == [201, 201, 201]
        assert len({r.json()["id"] for r in (first, second, third)}) == 3
        assert len(captured_dispatches) == 3

    def test_type_reuse_window_of_zero_overrides_the_setting(
        self, auth_client, post, make_type, captured_dispatches
    ):
        make_type("live_for_test", reuse_window=0)
        payload = {**NUMBERS, "report_type": "live_for_test"}
        first = post(auth_client, payload)
        second = post(auth_client, payload)
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json()["id"] != second.json()["id"]
        # The setting still applies to the other types.
        assert post(auth_client, NUMBERS).status_code == 201
        assert post(auth_client, NUMBERS).status_code == 200

    def test_type_reuse_window_longer_than_the_setting(
        self, auth_client, post, make_type, settings, captured_dispatches
    ):
        set_reports(settings, REUSE_WINDOW_SECONDS=0)
        make_type("stable_for_test", reuse_window=timedelta(hours=2))
        payload = {**NUMBERS, "report_type": "stable_for_test"}
        report_id = post(auth_client, payload).json()["id"]
        assert post(auth_client, payload).json()["outcome"] == "joined"
        complete(report_id)
        Report.objects.filter(pk=report_id).update(
            completed_at=timezone.now() - timedelta(minutes=90)
        )
        response = post(auth_client, payload)
        assert (response.status_code, response.json()["outcome"]) == (200, "reused")
        assert response.json()["id"] == report_id

    def test_email_requests_always_create(self, auth_client, post, captured_dispatches):
        first = post(auth_client, {**NUMBERS, "send_email": True})
        second = post(auth_client, {**NUMBERS, "send_email": True})
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json()["id"] != second.json()["id"]
        assert second.json()["send_email"] is True
        assert len(captured_dispatches) == 2

    def test_webhook_requests_always_create(self, auth_client, post, settings, captured_dispatches):
        set_reports(settings, WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOWED_PORTS=None)
        payload = {**NUMBERS, "webhook_url": "http://127.0.0.1:9/hook"}
        first = post(auth_client, payload)
        complete(first.json()["id"])
        second = post(auth_client, payload)
        assert (first.status_code, second.status_code) == (201, 201)
        assert second.json()["outcome"] == "created"
        assert second.json()["webhook_url"] == "http://127.0.0.1:9/hook"
        assert first.json()["id"] != second.json()["id"]


# -- concurrency -------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_identical_requests_at_the_same_moment_share_one_report(monkeypatch):
    monkeypatch.setattr(services.publishing, "publish_step", lambda report, step, **kw: None)
    owner = UserFactory(username="reuse-race")
    count = 4
    barrier = threading.Barrier(count)
    results: list = []
    errors: list[BaseException] = []

    def request():
        try:
            barrier.wait()
            results.append(
                services.request_or_reuse_report(
                    user=owner, report_type="numbers", parameters={"count": 5}
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert Counter(r.outcome for r in results) == Counter({"created": 1, "joined": count - 1})
    assert len({r.report.pk for r in results}) == 1
    assert Report.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_in_two_threads(monkeypatch):
    monkeypatch.setattr(services.publishing, "publish_step", lambda report, step, **kw: None)
    owner = UserFactory(username="reuse-pair")
    for round_ in range(5):  # several rounds: the race is won by either thread
        barrier = threading.Barrier(2)
        results: list = []
        errors: list[BaseException] = []

        def request(barrier=barrier, results=results, errors=errors, round_=round_):
            try:
                barrier.wait()
                results.append(
                    services.request_or_reuse_report(
                        user=owner, report_type="numbers", parameters={"count": round_}
                    )
                )
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=request) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert {r.outcome for r in results} == {"created", "joined"}
        assert results[0].report.pk == results[1].report.pk
    assert Report.objects.count() == 5


# -- formats -------------------------------------------------------------------------------
@pytest.mark.django_db
class TestFormats:
    def test_unknown_format_is_400(self, auth_client, captured_dispatches):
        response = auth_client.post(URL, {**NUMBERS, "format": "bogus"}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "format": [
                '"bogus" is not a format of numbers reports. '
                f"Formats: {', '.join(available_formats())}."
            ]
        }
        assert not Report.objects.exists()

    def test_format_the_type_does_not_offer_is_400_listing_the_offered_ones(
        self, auth_client, make_type, tsv_writer, captured_dispatches
    ):
        make_type("restricted_for_test", formats=["csv"])
        response = auth_client.post(
            URL,
            {**NUMBERS, "report_type": "restricted_for_test", "format": "testtsv"},
            format="json",
        )
        assert response.status_code == 400
        assert response.json() == {
            "format": ['"testtsv" is not a format of restricted_for_test reports. Formats: csv.']
        }
        assert not Report.objects.exists()

    def test_format_whose_package_is_missing_names_the_extra(
        self, auth_client, unavailable_writer, captured_dispatches
    ):
        response = auth_client.post(URL, {**NUMBERS, "format": "fancytest"}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "format": [
                'The "fancytest" format needs the optional "fancy" extra: '
                'pip install "django-async-reporting[fancy]".'
            ]
        }

    def test_requested_format_is_stored_and_written(
        self, auth_client, post, tsv_writer, captured_dispatches
    ):
        body = post(auth_client, {**NUMBERS, "format": "testtsv"}).json()
        assert body["format"] == "testtsv"
        report = complete(body["id"])
        assert report.result_file.name.endswith(".tsv")
        assert report.result_data["format"] == "testtsv"
        with report.result_file.open("rb") as fh:
            lines = fh.read().decode().splitlines()
        assert lines[:2] == ["n\tsquare\ttext", "1\t1\t"]

    def test_types_lists_formats_and_default_format(
        self, auth_client, make_type, tsv_writer, unavailable_writer
    ):
        make_type("restricted_for_test", formats=["csv"])
        make_type("tsv_only_for_test", formats=["testtsv"])
        types = {t["report_type"]: t for t in auth_client.get(URL + "types/").json()}
        assert types["numbers"]["formats"] == available_formats()
        assert "testtsv" in types["numbers"]["formats"]
        assert "fancytest" not in types["numbers"]["formats"]  # not installed
        assert types["numbers"]["default_format"] == "csv"
        assert types["restricted_for_test"]["formats"] == ["csv"]
        assert types["restricted_for_test"]["default_format"] == "csv"
        # DEFAULT_FORMAT (csv) is not offered: the type's first format is.
        assert types["tsv_only_for_test"]["formats"] == ["testtsv"]
        assert types["tsv_only_for_test"]["default_format"] == "testtsv"

    def test_request_without_format_gets_the_default(
        self, auth_client, post, make_type, tsv_writer, settings, captured_dispatches
    ):
        make_type("tsv_only_for_test", formats=["testtsv"])
        body = post(auth_client, {**NUMBERS, "report_type": "tsv_only_for_test"}).json()
        assert body["format"] == "testtsv"

        set_reports(settings, DEFAULT_FORMAT="testtsv")
        implicit = post(auth_client, NUMBERS).json()
        assert implicit["format"] == "testtsv"
        explicit = post(auth_client, {**NUMBERS, "format": "testtsv"})
        assert (explicit.status_code, explicit.json()["id"]) == (200, implicit["id"])

    def test_compress_is_stored_and_part_of_the_response(
        self, auth_client, post, captured_dispatches
    ):
        body = post(auth_client, {**NUMBERS, "compress": True}).json()
        assert body["compress"] is True
        report = complete(body["id"])
        assert report.result_file.name.endswith(".csv.gz")
        assert report.result_data["compressed"] is True


def test_fixture_writers_are_gone_afterwards():
    # The fixtures leave the writer registry as they found it.
    assert "testtsv" not in _WRITERS and "fancytest" not in _WRITERS
    assert _WRITERS["csv"] is CSVWriter


class TestStaleness:
    def test_a_report_about_to_expire_is_not_reused(self, auth_client, post, captured_dispatches):
        first = post(auth_client, NUMBERS).json()
        complete(first["id"])
        # Expiring in 30 s: less than the minute a reused report must have left.
        Report.objects.filter(pk=first["id"]).update(
            expires_at=timezone.now() + timedelta(seconds=30)
        )
        response = post(auth_client, NUMBERS)
        assert response.status_code == 201
        assert response.json()["outcome"] == "created"
        assert response.json()["id"] != first["id"]

    def test_a_stuck_pending_report_is_not_joined(self, auth_client, post, captured_dispatches):
        first = post(auth_client, NUMBERS).json()
        # Pending for longer than every attempt could take: its message is lost.
        Report.objects.filter(pk=first["id"]).update(created_at=timezone.now() - timedelta(days=1))
        response = post(auth_client, NUMBERS)
        assert response.status_code == 201
        assert response.json()["outcome"] == "created"

        # A recent pending one is still joined.
        again = post(auth_client, NUMBERS)
        assert (again.status_code, again.json()["outcome"]) == (200, "joined")
        assert again.json()["id"] == response.json()["id"]


def test_a_type_whose_formats_are_all_missing_is_refused(make_type, unavailable_writer, user):
    from rest_framework.exceptions import ValidationError

    fancy = unavailable_writer.format
    make_type("fancy_only", formats=[fancy])
    with pytest.raises(ValidationError) as caught:
        services.resolve_format("fancy_only", None)
    message = str(caught.value.detail["format"][0])
    assert "No format of fancy_only reports is installed" in message
    assert f"django-async-reporting[{unavailable_writer.extra}]" in message


# -- a more urgent joiner ------------------------------------------------------------------
@pytest.mark.django_db
class TestJoinerPriority:
    def test_more_urgent_joiner_raises_a_pending_report_and_sends_it_again(
        self, auth_client, post, captured_dispatches
    ):
        first = post(auth_client, {**NUMBERS, "priority": "low"}).json()
        old_task_id = first["celery_task_id"]

        joined = post(auth_client, {**NUMBERS, "priority": "urgent"})

        assert joined.status_code == 200
        body = joined.json()
        assert (body["outcome"], body["id"], body["priority"]) == ("joined", first["id"], "urgent")
        assert body["celery_task_id"] != old_task_id  # the row names the new message
        assert [r.priority for r in captured_dispatches] == ["low", "urgent"]
        assert str(captured_dispatches[1].celery_task_id) == body["celery_task_id"]
        assert Report.objects.get(pk=first["id"]).priority == "urgent"

    @pytest.mark.parametrize("joiner", ["low", "normal"])
    def test_an_equal_or_less_urgent_joiner_changes_nothing(
        self, auth_client, post, captured_dispatches, joiner
    ):
        first = post(auth_client, {**NUMBERS, "priority": "normal"}).json()
        body = post(auth_client, {**NUMBERS, "priority": joiner}).json()
        assert (body["outcome"], body["priority"]) == ("joined", "normal")
        assert body["celery_task_id"] == first["celery_task_id"]
        assert len(captured_dispatches) == 1

    def test_a_running_report_records_the_priority_without_sending_again(
        self, auth_client, post, captured_dispatches
    ):
        first = post(auth_client, {**NUMBERS, "priority": "low"}).json()
        services.claim_report(first["id"])
        body = post(auth_client, {**NUMBERS, "priority": "high"}).json()
        assert (body["outcome"], body["status"], body["priority"]) == (
            "joined",
            "processing",
            "high",
        )
        assert body["celery_task_id"] == first["celery_task_id"]
        assert len(captured_dispatches) == 1

    def test_a_refused_second_send_keeps_the_first_message(
        self, auth_client, post, monkeypatch, caplog
    ):
        sent = []
        monkeypatch.setattr(
            "django_async_reports.services.publishing.publish_step",
            lambda report, step, **kw: sent.append(report),
        )
        first = post(auth_client, {**NUMBERS, "priority": "low"}).json()

        def refuse(report, step, **kw):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr("django_async_reports.services.publishing.publish_step", refuse)
        response = post(auth_client, {**NUMBERS, "priority": "urgent"})

        assert response.status_code == 200
        assert "Could not send report" in caplog.text
        report = Report.objects.get(pk=first["id"])
        # Still pending on its first message, which still runs it, at its first priority.
        assert (report.status, report.celery_task_id) == ("pending", first["celery_task_id"])
        assert report.priority == "low"
