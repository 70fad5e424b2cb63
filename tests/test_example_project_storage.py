"""The example project on S3, run as a user runs it: formats, reuse, retention and cleanup.

A real S3-compatible server (moto, ``tests/s3_server.py``) on 127.0.0.1 with a
private bucket; the example project migrated and seeded in a temporary
``EXAMPLE_VAR_DIR`` with ``REPORTS_S3_BUCKET`` / ``AWS_S3_ENDPOINT_URL`` pointing
at it, a short ``REPORT_RETENTION_SECONDS`` and ``CLEANUP_INTERVAL=2``; a real
Celery worker and ``runserver`` (the ``server`` fixture of ``test_example_project``),
then everything over HTTP with the demo user's Bearer token:

1. ``analytics`` in each format, plain and gzip-compressed: downloads redirect
   to presigned URLs on the S3 server, the objects sit under their documented
   keys, are private, and open with each format's own reader with the
   database's numbers, checksum, size and row count;
2. an identical request reuses (or joins) a report, ``"force": true`` does not;
3. ``types/`` lists the formats and charts of ``analytics``;
4. once expired, downloads answer 410 Gone; then ``celery beat`` is started and
   its periodic cleanup deletes every row and every object.

Beat starts only in the last test, after the 410s: before it runs nothing
deletes an expired report, so the 410 is observed deterministically (with beat
running from the start, a cleanup every 2 s races the client for each report),
and the rows and objects still being there after their expiry shows that
beat's task, and nothing else, deletes them.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils.text import slugify

from tests.s3_server import S3_CREDENTIALS, S3_REGION, create_private_bucket, list_keys, s3_server
from tests.test_example_project import (
    PROJECT,
    STARTUP_TIMEOUT,
    Api,
    example_env,
    free_port,
    manage,
    server,  # noqa: F401 - the fixture: a worker and runserver for this module's ``project``
    shell_json,
    stop,
    tail,
    wait_for,
    wait_until_finished,
)

SEED_ORDERS = 3000
SEED_CUSTOMERS = 200
RETENTION_SECONDS = 20
CLEANUP_INTERVAL = 2
#: The seed's whole default period (2024-01-01 to 2025-12-31), a row per month.
PARAMETERS = {"start_date": "2024-01-01", "end_date": "2025-12-31", "group_by": "month"}
MONTHS = [f"{year}-{month:02d}" for year in (2024, 2025) for month in range(1, 13)]
FORMATS = ("csv", "xlsx", "json", "ndjson", "pdf")
CASES = [(fmt, compress) for fmt in FORMATS for compress in (False, True)]
CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "pdf": "application/pdf",
}
COLUMNS = ["group", "orders", "units", "revenue", "average_order_value", "customers"]
CHART_TITLES = [
    "Revenue per group",
    "Orders per group",
    "Revenue per region",
    "Top products by revenue",
    "Orders per status",
]
#: A number as a PDF table shows it: thousands may be comma-separated.
PDF_NUMBER = re.compile(r"\d{1,3}(?:,?\d{3})*(?:\.\d+)?")
CLEANUP_SENT = b"Sending due task django_async_reports.cleanup_expired_reports"
CLEANUP_DONE = re.compile(
    rb"Task django_async_reports\.cleanup_expired_reports\[[^]]+\] succeeded in [^:]+: (\{[^}]*\})"
)
#: Variables this module sets itself, removed from the inherited environment first.
S3_VARIABLES = (
    "REPORTS_S3_BUCKET",
    "AWS_S3_ENDPOINT_URL",
    "AWS_S3_REGION_NAME",
    "REPORT_RETENTION_SECONDS",
    "CLEANUP_INTERVAL",
    "REUSE_WINDOW_SECONDS",
)


#: What the reports should say, from the database (run in ``manage.py shell``).
EXPECTED_CODE = """
import json
from collections import defaultdict
from decimal import Decimal
from django.contrib.auth import get_user_model
from shop.models import Order

months = defaultdict(lambda: {"orders": 0, "units": 0, "revenue": Decimal(0), "customers": set()})
sales = Order.objects.filter(status__in=("paid", "shipped", "delivered"))
for at, quantity, total, customer in sales.values_list(
    "created_at", "quantity", "total", "customer_id"
):
    month = months[at.strftime("%Y-%m")]  # TIME_ZONE is UTC
    month["orders"] += 1
    month["units"] += quantity
    month["revenue"] += total
    month["customers"].add(customer)
cent = Decimal("0.01")
print(json.dumps({
    "user_id": get_user_model().objects.get(username="demo").pk,
    "orders": Order.objects.count(),
    "months": {
        key: [m["orders"], m["units"], str(m["revenue"].quantize(cent)), len(m["customers"])]
        for key, m in months.items()
    },
    "total_revenue": str(sum((m["revenue"] for m in months.values()), Decimal(0)).quantize(cent)),
}))
"""


@pytest.fixture(autouse=True)
def _clean_media_and_cache():
    """Replace the suite's autouse fixture: these tests use neither the test settings'
    cache (Redis) nor their media, only their own temporary folders and S3 bucket."""
    yield


# -- services ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 and a fresh private bucket on it."""
    with s3_server() as endpoint:
        yield {"endpoint": endpoint, "bucket": create_private_bucket(endpoint)}


@pytest.fixture(scope="module")
def project(tmp_path_factory, s3) -> dict[str, Any]:
    """A migrated, seeded project storing its reports in the bucket; what to expect."""
    var_dir = tmp_path_factory.mktemp("example-s3-var")
    port = free_port()
    env = {
        k: v for k, v in example_env(var_dir).items()
        if not k.startswith("AWS_") and k not in S3_VARIABLES
    }  # fmt: skip
    env.update(
        SITE_URL=f"http://127.0.0.1:{port}",
        REPORTS_S3_BUCKET=s3["bucket"],
        AWS_S3_ENDPOINT_URL=s3["endpoint"],
        AWS_S3_REGION_NAME=S3_REGION,
        AWS_ACCESS_KEY_ID=S3_CREDENTIALS["access_key"],
        AWS_SECRET_ACCESS_KEY=S3_CREDENTIALS["secret_key"],
        # No ~/.aws of this machine's user may change what the processes do.
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        REPORT_RETENTION_SECONDS=str(RETENTION_SECONDS),
        CLEANUP_INTERVAL=str(CLEANUP_INTERVAL),
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "seed_demo_data", "--orders", str(SEED_ORDERS), "--customers", str(SEED_CUSTOMERS))
    token = manage(env, "demo_token").strip()
    assert len(token) == 40, token
    # Per month, counted in plain Python over the orders, independently of the generator.
    expected = shell_json(env, EXPECTED_CODE)
    assert expected["orders"] == SEED_ORDERS
    assert sorted(expected["months"]) == MONTHS  # every month of the seed's period has sales
    return {"env": env, "var_dir": var_dir, "port": port, "token": token, "expected": expected}


@pytest.fixture(scope="module")
def http(server, project) -> Iterator[Api]:  # noqa: F811 - ``server`` is the imported fixture
    with Api(f"{server}/api/v1/reports/", project["token"]) as session:
        yield session


def expected_rows(expected: dict[str, Any]) -> list[list[Any]]:
    """The analytics rows the database calls for: group, orders, units, revenue, aov, customers."""
    rows = []
    for month in MONTHS:
        n, units, revenue, customers = expected["months"][month]
        aov = (Decimal(revenue) / n).quantize(Decimal("0.01"))
        rows.append([month, n, units, Decimal(revenue), aov, customers])
    return rows


@pytest.fixture(scope="module")
def reports(http, project) -> dict[tuple[str, bool], dict[str, Any]]:
    """One analytics report per (format, compress), requested together, followed to the end."""
    created = {}
    for fmt, compress in CASES:
        response = http.post(
            http.base,
            json={
                "report_type": "analytics",
                "title": title_of(fmt, compress),
                "parameters": PARAMETERS,
                "format": fmt,
                "compress": compress,
            },
            timeout=10,
        )
        assert response.status_code == 201, (fmt, compress, response.text)
        body = response.json()
        assert body["outcome"] == "created"
        assert (body["format"], body["compress"]) == (fmt, compress)
        created[(fmt, compress)] = body["id"]
    found = {}
    for case, report_id in created.items():
        progress = wait_until_finished(http, report_id, project["var_dir"])
        report = http.get(f"{http.base}{report_id}/", timeout=10).json()
        assert progress[-1]["status"] == "completed", (case, report)
        found[case] = report
    return found


@pytest.fixture(scope="module")
def more_reports() -> list[dict[str, Any]]:
    """Reports the tests make besides ``reports``: the retention test expects them too."""
    return []


def title_of(fmt: str, compress: bool) -> str:
    return f"Analytics {fmt.upper()}{' gzip' if compress else ''}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- 1. every format, plain and compressed, through S3 -----------------------------
def read_rows(fmt: str, data: bytes, report: dict[str, Any]) -> list[list[Any]]:
    """The data rows of a report file, read with the format's own reader, checked on the way."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        assert rows[0] == COLUMNS
        return [
            [g, int(n), int(u), Decimal(r), Decimal(a), int(c)] for g, n, u, r, a, c in rows[1:]
        ]
    if fmt == "xlsx":
        import openpyxl

        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            charts = sorted(
                n for n in archive.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)
            )
            chart_xml = "".join(archive.read(name).decode("utf-8") for name in charts)
        assert len(charts) == len(CHART_TITLES), charts  # native charts, one per declaration
        for chart_title in CHART_TITLES:
            assert chart_title in chart_xml
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert "Summary" in book.sheetnames, book.sheetnames
        sheet = book.worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
        assert list(values[0]) == COLUMNS
        assert all(cell.font.bold for cell in sheet[1])
        body = [list(row) for row in values[1:] if any(v is not None for v in row)]
        for row in body:
            assert isinstance(row[1], int) and isinstance(row[3], (int, float)), row  # typed cells
        summary = [v for row in book["Summary"].iter_rows(values_only=True) for v in row]
        assert report["title"] in summary
        return [[g, n, u, Decimal(str(r)), Decimal(str(a)), c] for g, n, u, r, a, c in body]
    if fmt in ("json", "ndjson"):
        text = data.decode("utf-8")
        if fmt == "json":
            objects = json.loads(text)
            assert isinstance(objects, list)
        else:
            lines = text.split("\n")
            assert lines[-1] == "", "NDJSON ends each record with a newline"
            objects = [json.loads(line) for line in lines[:-1]]
        assert all(isinstance(o, dict) and list(o) == COLUMNS for o in objects), objects[:2]
        return [
            [o["group"], o["orders"], o["units"], Decimal(str(o["revenue"])),
             Decimal(str(o["average_order_value"])), o["customers"]]
            for o in objects
        ]  # fmt: skip
    if fmt == "pdf":
        import pypdf

        pdf = pypdf.PdfReader(io.BytesIO(data))
        text = "\n".join(page.extract_text() or "" for page in pdf.pages)
        assert report["title"] in text
        total = report["result_data"]["summary"]["total_revenue"]
        assert total in text or f"{Decimal(total):,}" in text, (total, text[:2000])
        # The drawings of the charts, then the table (its header on every page).
        for chart_title in CHART_TITLES:
            assert chart_title in text
        found = pdf_table_rows(text.split())
        assert found, text[:3000]
        number = lambda v: Decimal(v.replace(",", ""))  # noqa: E731
        return [[g, int(number(n)), int(number(u)), number(r), number(a), int(number(c))]
                for g, n, u, r, a, c in found]  # fmt: skip
    raise AssertionError(fmt)


def pdf_table_rows(tokens: list[str]) -> list[list[str]]:
    """The rows under each "Group Orders Units Revenue ... Customers" header of a PDF's text.

    pypdf gives a table's cells one per line; the header shows the columns as
    words ("average_order_value" as "Average order value"); chart axes above the
    table have months too, so only what follows a header counts.
    """
    rows = []
    for start in range(len(tokens) - 4):
        if tokens[start : start + 4] != ["Group", "Orders", "Units", "Revenue"]:
            continue
        i = tokens.index("Customers", start) + 1
        while (
            i + 6 <= len(tokens)
            and re.fullmatch(r"\d{4}-\d{2}", tokens[i])
            and all(PDF_NUMBER.fullmatch(t) for t in tokens[i + 1 : i + 6])
        ):
            rows.append(tokens[i : i + 6])
            i += 6
    return rows


@pytest.mark.parametrize(
    ("fmt", "compress"), CASES, ids=[f"{f}{'-gz' if c else ''}" for f, c in CASES]
)
def test_format_downloads_through_a_presigned_url(http, project, s3, reports, fmt, compress):
    report = reports[(fmt, compress)]
    result = report["result_data"]
    expected = project["expected"]
    assert parse_time(report["expires_at"]) > datetime.now(timezone.utc), "expired too early"
    assert (result["format"], result["compressed"]) == (fmt, compress)

    # The API answers with a redirect to a presigned URL on the S3 server, never cached.
    response = http.get(report["download_url"], allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    assert response.headers["Cache-Control"] == "no-store"
    location = urlsplit(response.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    key = (  # the "1/": the run's attempt, so that no other run can write over it
        f"reports/{expected['user_id']}/{report['id']}/1/"
        f"{slugify(title_of(fmt, compress))}.{fmt}{'.gz' if compress else ''}"
    )
    assert f"{location.scheme}://{location.netloc}" == s3["endpoint"]
    assert location.path == f"/{s3['bucket']}/{key}"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith(f"{S3_CREDENTIALS['access_key']}/")
    assert query["X-Amz-Expires"] == "300"  # DOWNLOAD_URL_EXPIRES
    assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"])
    assert key in list_keys(s3["endpoint"], s3["bucket"], f"reports/{expected['user_id']}/")

    # Followed as a browser would, without the API's token: the stored bytes, as stored.
    fetched = requests.get(response.headers["Location"], timeout=10)
    assert fetched.status_code == 200, fetched.text[:500]
    assert "Content-Encoding" not in fetched.headers  # else clients unpack a .gz download
    content_type = "application/gzip" if compress else CONTENT_TYPES[fmt]
    assert fetched.headers["Content-Type"].split(";")[0] == content_type
    assert fetched.headers["Content-Disposition"] == (
        f'attachment; filename="{key.rsplit("/", 1)[1]}"'
    )
    body = fetched.content
    assert result["checksum"] == f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert result["file_size"] == len(body)

    # The object is private: the same URL unsigned is refused, and so is the API anonymously.
    unsigned = requests.get(f"{s3['endpoint']}/{s3['bucket']}/{key}", timeout=10)
    assert unsigned.status_code == 403
    assert (
        requests.get(report["download_url"], allow_redirects=False, timeout=10).status_code == 401
    )

    if compress:
        assert body[:2] == b"\x1f\x8b"
        data = gzip.decompress(body)
        assert result["uncompressed_size"] == len(data)
    else:
        data = body
    rows = read_rows(fmt, data, report)
    assert result["row_count"] == len(rows) == len(MONTHS)
    assert rows == expected_rows(expected)
    summary = result["summary"]
    assert summary["total_revenue"] == expected["total_revenue"]
    assert summary["order_count"] == sum(row[1] for row in rows)


# -- 2. reuse ---------------------------------------------------------------------------
def test_identical_request_is_reused_joined_or_forced(http, project, reports, more_reports):
    first = reports[("csv", False)]
    request = {
        "report_type": "analytics",
        "title": "Another title: not part of the identity",
        # The same parameters, given in another order: normalised before comparing.
        "parameters": dict(reversed(list(PARAMETERS.items()))),
        "format": "csv",
        "compress": False,
    }
    response = http.post(http.base, json=request, timeout=10)
    assert response.status_code == 200, response.text
    reused = response.json()
    assert (reused["outcome"], reused["id"], reused["status"]) == (
        "reused",
        first["id"],
        "completed",
    )
    assert reused["result_data"]["checksum"] == first["result_data"]["checksum"]

    response = http.post(http.base, json={**request, "force": True}, timeout=10)
    assert response.status_code == 201, response.text
    forced = response.json()
    assert forced["outcome"] == "created" and forced["id"] != first["id"]
    assert response.headers["Location"].endswith(f"/api/v1/reports/{forced['id']}/")

    # An identical request while the forced one is still on its way joins it.
    response = http.post(http.base, json=request, timeout=10)
    assert response.status_code == 200, response.text
    joined = response.json()
    assert joined["id"] == forced["id"]
    if joined["outcome"] == "joined":
        assert joined["status"] in ("pending", "processing"), joined
    else:  # the worker was quicker than this http
        assert (joined["outcome"], joined["status"]) == ("reused", "completed"), joined

    progress = wait_until_finished(http, forced["id"], project["var_dir"])
    assert progress[-1]["status"] == "completed"
    done = http.get(f"{http.base}{forced['id']}/", timeout=10).json()
    # Made anew from the same data: the same bytes as the first (CSV has no timestamp).
    assert done["result_data"]["checksum"] == first["result_data"]["checksum"]
    assert done["result_data"]["file_size"] == first["result_data"]["file_size"]
    more_reports.append(done)


# -- 3. types -----------------------------------------------------------------------------
def test_types_list_the_formats_and_charts_of_analytics(http):
    response = http.get(f"{http.base}types/", timeout=10)
    assert response.status_code == 200
    analytics = next(t for t in response.json() if t["report_type"] == "analytics")
    assert sorted(analytics["formats"]) == ["csv", "json", "ndjson", "pdf", "xlsx"]
    assert analytics["default_format"] == "csv"
    assert analytics["charts"] == [
        {"kind": "line", "title": "Revenue per group"},
        {"kind": "bar", "title": "Orders per group"},
        {"kind": "pie", "title": "Revenue per region"},
        {"kind": "bar", "title": "Top products by revenue"},
        {"kind": "pie", "title": "Orders per status"},
    ]
    assert analytics["retention_seconds"] == RETENTION_SECONDS
    assert analytics["columns"] == COLUMNS


# -- 4. retention and beat's cleanup ------------------------------------------------------
def start_beat(project: dict[str, Any], log: Path) -> subprocess.Popen:
    """``celery -A config beat`` as the demo starts it."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            cwd=PROJECT, env=project["env"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def test_expired_reports_are_gone_then_beat_cleans_them_up(
    http, project, s3, reports, more_reports
):
    var_dir = project["var_dir"]
    expected = project["expected"]
    worker_log, beat_log = var_dir / "worker.log", var_dir / "beat.log"
    everything = [*reports.values(), *more_reports]
    assert len(everything) == len(CASES) + 1  # and the forced one
    listing = http.get(http.base, timeout=10).json()
    assert listing["count"] == len(everything)
    assert {r["id"] for r in listing["results"]} == {r["id"] for r in everything}
    stored = list_keys(s3["endpoint"], s3["bucket"])
    # One object per report: compressed ones keep only their .gz.
    assert len(stored) == len(everything)
    assert all(
        any(k.startswith(f"reports/{expected['user_id']}/{r['id']}/") for k in stored)
        for r in everything
    ), stored
    assert sum(k.endswith(".gz") for k in stored) == len(FORMATS)

    # Kept RETENTION_SECONDS after completion, then 410 Gone: the row is still there.
    for report in everything:
        completed = parse_time(report["completed_at"])
        expires = parse_time(report["expires_at"])
        assert round((expires - completed).total_seconds()) == RETENTION_SECONDS
    last = max(parse_time(r["expires_at"]) for r in everything)
    wait_for(lambda: datetime.now(timezone.utc) > last, RETENTION_SECONDS + 5, "the expiry")
    for report in everything:
        url = f"{http.base}{report['id']}/"
        response = http.get(f"{url}download/", allow_redirects=False, timeout=10)
        assert response.status_code == 410, response.text
        assert parse_time(response.json()["expires_at"]) == parse_time(report["expires_at"])
        detail = http.get(url, timeout=10).json()
        assert (detail["expired"], detail["download_url"]) == (True, None)
    # Nothing but the cleanup deletes: every object is still in the bucket.
    assert list_keys(s3["endpoint"], s3["bucket"]) == stored

    # celery beat sends the cleanup every CLEANUP_INTERVAL seconds; the worker deletes.
    beat = start_beat(project, beat_log)
    try:
        logs = (worker_log, beat_log)

        def beat_broken() -> str | None:
            return f"beat exited:\n{tail(beat_log)}" if beat.poll() is not None else None

        wait_for(lambda: CLEANUP_SENT in beat_log.read_bytes(), STARTUP_TIMEOUT,
                 "beat to send the cleanup", beat_broken, *logs)  # fmt: skip

        def all_deleted() -> bool:
            return all(
                http.get(f"{http.base}{r['id']}/", timeout=10).status_code == 404
                for r in everything
            )

        wait_for(all_deleted, 5 * CLEANUP_INTERVAL + 10, "the rows' deletion", beat_broken, *logs)
        assert list_keys(s3["endpoint"], s3["bucket"]) == []
        assert http.get(http.base, timeout=10).json()["count"] == 0
        for report in everything:
            response = http.get(f"{http.base}{report['id']}/download/", timeout=10)
            assert response.status_code == 404

        def cleanup_results() -> list[dict[str, int]]:
            return [
                ast.literal_eval(m.decode()) for m in CLEANUP_DONE.findall(worker_log.read_bytes())
            ]

        results = wait_for(
            cleanup_results, 10, "the cleanup's result in the worker log", None, *logs
        )
        assert sum(r["reports"] for r in results) == len(everything), results
        assert sum(r["files"] for r in results) == len(everything), results
        assert sum(r["kept"] for r in results) == 0, results  # no file failed to delete
        # Beat keeps sending it: at least one more run, which finds nothing.
        count = len(results)
        later = wait_for(lambda: cleanup_results()[count:], 4 * CLEANUP_INTERVAL + 10,
                         "another cleanup", beat_broken, *logs)  # fmt: skip
        assert later[0] == {"reports": 0, "files": 0, "batches": 0, "kept": 0}
    finally:
        stop(beat)
