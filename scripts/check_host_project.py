"""HTTP driver of scripts/check_host_project.sh: drive a fresh host project's reports API.

Run by check_host_project.sh with the host project's virtualenv (it needs
``requests``) once the host's web server and a real Celery worker are up::

    python check_host_project.py --base-url http://127.0.0.1:8123/api/v1/reports/ \
        --fixtures fixtures.json --media-root /tmp/.../media

``fixtures.json`` holds the two users' Bearer tokens written by the host's
``manage.py shell``. The worker must run with a single process (``-c 1``): the
cancel check proves that a cancelled report frees the worker by timing the
next report. Every check prints one line; the first failed assertion exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

# What alice's "sales" report for 2024-12-01..2024-12-31 must contain, byte for
# byte: her three orders in range (not bob's, not her January one), UTF-8, a
# formula-like customer neutralised with a leading quote, numbers left alone.
EXPECTED_SALES_CSV = (
    "order_id,date,customer,total\r\n"
    "1001,2024-12-01,Ana García,120.50\r\n"
    "1002,2024-12-15,'=SUM(A1:A2),-5.00\r\n"
    '1003,2024-12-31,"Smith, John",99.99\r\n'
).encode()
SALES_PARAMETERS = {"start_date": "2024-12-01", "end_date": "2024-12-31"}
FINISHED = {"completed", "failed", "cancelled"}

T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[driver +{time.monotonic() - T0:6.2f}s] {message}", flush=True)


class CheckFailed(AssertionError):
    pass


def check(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Client:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base = base_url if base_url.endswith("/") else base_url + "/"
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str = "") -> str:
        return self.base + path

    def get(self, path: str = "", **kw: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=30, **kw)

    def post(self, path: str = "", **kw: Any) -> requests.Response:
        return self.session.post(self.url(path), timeout=30, **kw)


def expect(resp: requests.Response, status: int, what: str) -> Any:
    body: Any
    try:
        body = resp.json()
    except ValueError:
        body = resp.content[:500]
    check(resp.status_code == status, f"{what}: expected HTTP {status}, got {resp.status_code}: {body!r}")
    return body


def wait_for(
    client: Client,
    report_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    seen: list[tuple[float, str, int]] | None = None,
) -> dict[str, Any]:
    """Poll progress/ until ``until(data)``; record (t, status, progress) samples."""
    deadline = time.monotonic() + timeout
    while True:
        data = expect(client.get(f"{report_id}/progress/"), 200, "progress")
        if seen is not None:
            seen.append((time.monotonic(), data["status"], int(data["progress"])))
        if until(data):
            return data
        check(
            time.monotonic() < deadline,
            f"report {report_id} did not get there within {timeout}s; last progress: {data}",
        )
        time.sleep(interval)


def finished(data: dict[str, Any]) -> bool:
    return data["status"] in FINISHED


def assert_monotonic(seen: list[tuple[float, str, int]], what: str) -> None:
    values = [p for _, _, p in seen]
    check(
        all(b >= a for a, b in zip(values, values[1:])),
        f"{what}: progress went backwards: {values}",
    )


def create(client: Client, payload: dict[str, Any], what: str) -> dict[str, Any]:
    resp = client.post("", json=payload)
    body = expect(resp, 201, what)
    check(body.get("id"), f"{what}: no id in the 201 response: {body}")
    for key in ("report_type", "title", "parameters", "status", "priority", "progress"):
        check(key in body, f"{what}: {key!r} missing from the 201 representation: {sorted(body)}")
    check(body["status"] == "pending", f"{what}: a new report is pending, got {body['status']}")
    check(resp.headers.get("Location", "").endswith(f"/{body['id']}/"),
          f"{what}: Location header {resp.headers.get('Location')!r}")
    return body


def download_ok(client: Client, report_id: str, what: str) -> bytes:
    resp = client.get(f"{report_id}/download/")
    expect(resp, 200, what)
    ctype = resp.headers.get("Content-Type", "")
    disp = resp.headers.get("Content-Disposition", "")
    check(ctype.startswith("text/csv"), f"{what}: Content-Type {ctype!r}")
    check(disp.startswith("attachment") and ".csv" in disp, f"{what}: Content-Disposition {disp!r}")
    return resp.content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--fixtures", required=True, type=Path)
    parser.add_argument("--media-root", required=True, type=Path)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    fixtures = json.loads(args.fixtures.read_text())
    alice = Client(args.base_url, fixtures["alice_token"])
    bob = Client(args.base_url, fixtures["bob_token"])
    anon = Client(args.base_url, None)
    timeout = args.timeout
    timings: dict[str, float] = {}

    # 1. Anonymous requests are refused by the host's authentication (Bearer tokens).
    resp = anon.get("")
    expect(resp, 401, "anonymous list")
    check("Bearer" in resp.headers.get("WWW-Authenticate", ""),
          f"anonymous list: WWW-Authenticate {resp.headers.get('WWW-Authenticate')!r}")
    expect(anon.post("", json={"report_type": "sales", "parameters": SALES_PARAMETERS}), 401,
           "anonymous create")
    expect(Client(args.base_url, "not-a-token").get(""), 401, "bad token list")
    log("anonymous and bad-token requests: 401 with WWW-Authenticate: Bearer")

    # 2. The host's generators are listed by types/.
    types = expect(alice.get("types/"), 200, "types")
    by_type = {t["report_type"]: t for t in types}
    check({"sales", "slow"} <= set(by_type), f"types: {sorted(by_type)}")
    check(by_type["sales"]["label"] == "Sales report", f"types: sales label {by_type['sales']}")
    check(by_type["sales"]["columns"] == ["order_id", "date", "customer", "total"],
          f"types: sales columns {by_type['sales']['columns']}")
    check(set(by_type["sales"]["parameters"]) == {"start_date", "end_date"},
          f"types: sales parameters {by_type['sales']['parameters']}")
    log(f"types/: {sorted(by_type)} with labels, columns and parameters")

    # 3. Invalid input is 400 with field errors; nothing is queued.
    body = expect(alice.post("", json={"report_type": "nope"}), 400, "unknown report_type")
    check("report_type" in body, f"unknown report_type: {body}")
    body = expect(alice.post("", json={"report_type": "sales",
                                       "parameters": {"start_date": "yesterday"}}),
                  400, "invalid parameters")
    check("start_date" in body.get("parameters", {}) and "end_date" in body["parameters"],
          f"invalid parameters: {body}")
    body = expect(alice.post("", json={"report_type": "sales", "priority": "asap",
                                       "parameters": SALES_PARAMETERS}), 400, "unknown priority")
    check("priority" in body, f"unknown priority: {body}")
    expect(alice.post("", data=b'{"report_type": "sales",',
                      headers={"Content-Type": "application/json"}), 400, "malformed JSON")
    check(expect(alice.get(""), 200, "list")["count"] == 0, "invalid requests created reports")
    log("bad input: unknown report_type, invalid parameters, unknown priority, malformed JSON -> 400")

    # 4. Create (the seed's payload shape), watch progress to completion, download.
    t = time.monotonic()
    sales = create(alice, {"report_type": "sales", "title": "December Sales Report",
                           "priority": "high", "parameters": SALES_PARAMETERS}, "create sales")
    log(f"POST / -> 201 id={sales['id']} status={sales['status']} priority={sales['priority']}")
    seen: list[tuple[float, str, int]] = []
    data = wait_for(alice, sales["id"], finished, timeout=timeout, seen=seen)
    timings["sales report: create -> completed"] = time.monotonic() - t
    check(data["status"] == "completed" and data["progress"] == 100,
          f"sales report did not complete: {data}")
    assert_monotonic(seen, "sales report")
    log(f"progress/ reached {data['status']} {data['progress']}% '{data['message']}' "
        f"after {timings['sales report: create -> completed']:.2f}s "
        f"({len(seen)} polls, statuses seen: {sorted({s for _, s, _ in seen})})")
    content = download_ok(alice, sales["id"], "download sales")
    disp = alice.get(f"{sales['id']}/download/").headers["Content-Disposition"]
    check('filename="december-sales-report.csv"' in disp, f"Content-Disposition {disp!r}")
    check(content.removeprefix(b"\xef\xbb\xbf") == EXPECTED_SALES_CSV,
          f"download content differs:\n got {content!r}\nwant {EXPECTED_SALES_CSV!r}")
    detail = expect(alice.get(f"{sales['id']}/"), 200, "detail sales")
    rd = detail["result_data"]
    check(rd.get("row_count") == 3, f"result_data row_count: {rd}")
    check(rd.get("file_size") == len(content), f"result_data file_size {rd} vs {len(content)}")
    check(rd.get("checksum") == "sha256:" + hashlib.sha256(content).hexdigest(),
          f"result_data checksum {rd.get('checksum')}")
    check(detail["download_url"] and detail["download_url"].endswith(f"/{sales['id']}/download/"),
          f"download_url {detail['download_url']!r}")
    check(detail["started_at"] and detail["completed_at"] and detail["expires_at"],
          f"timestamps {detail}")
    log(f"download/: {len(content)} bytes equal to the expected CSV; {disp}; "
        f"result_data row_count=3, file_size and sha256 checksum match")
    # The same question again is answered by the same report (200 "reused"), unless forced.
    again = expect(alice.post("", json={"report_type": "sales", "title": "Same again",
                                        "parameters": SALES_PARAMETERS}), 200, "identical request")
    check(again["id"] == sales["id"] and again["outcome"] == "reused",
          f"identical request not reused: {again.get('id')} {again.get('outcome')}")
    log("identical request -> 200 outcome=reused, same id")

    # 5. Other users see none of it (404), whatever the route.
    sid = sales["id"]
    for method, path in (("get", f"{sid}/"), ("get", f"{sid}/progress/"),
                         ("get", f"{sid}/download/"), ("post", f"{sid}/cancel/"),
                         ("post", f"{sid}/regenerate/")):
        expect(getattr(bob, method)(path), 404, f"bob {method.upper()} {path}")
    check(expect(bob.get(""), 200, "bob list")["count"] == 0, "bob sees alice's reports")
    check(expect(bob.get("recent/"), 200, "bob recent") == [], "bob's recent is not empty")
    log("bob: alice's report is 404 on detail, progress, download, cancel and regenerate; "
        "bob's list and recent are empty")

    # 6. Watch a slower report: intermediate percentages, never backwards, then 100.
    t = time.monotonic()
    slow = create(alice, {"report_type": "slow", "title": "Watch me",
                          "parameters": {"rows": 20, "delay": 0.2}}, "create slow")
    seen = []
    data = wait_for(alice, slow["id"], finished, timeout=timeout, interval=0.1, seen=seen)
    timings["slow report (20 rows x 0.2s): create -> completed"] = time.monotonic() - t
    check(data["status"] == "completed" and data["progress"] == 100, f"slow report: {data}")
    assert_monotonic(seen, "slow report")
    middle = sorted({p for _, s, p in seen if s == "processing" and 0 < p < 100})
    check(len(middle) >= 2, f"slow report: too few intermediate percentages seen: {seen}")
    lines = download_ok(alice, slow["id"], "download slow").decode().splitlines()
    check(len(lines) == 21 and lines[0] == "n,square" and lines[-1] == "19,361",
          f"slow report content: {lines[:3]}...{lines[-2:]}")
    log(f"watched 'slow' report: processing percentages {middle} then completed 100% "
        f"in {timings['slow report (20 rows x 0.2s): create -> completed']:.2f}s; 21 CSV lines")

    # 7. Cancel while running: status flips at once, the worker stops within a few
    #    seconds (progress freezes, the single worker process is free again).
    long = create(alice, {"report_type": "slow", "title": "Cancel me",
                          "parameters": {"rows": 400, "delay": 0.1}}, "create long")
    data = wait_for(alice, long["id"],
                    lambda d: finished(d) or (d["status"] == "processing" and d["progress"] >= 2),
                    timeout=timeout)
    check(data["status"] == "processing", f"long report should be running: {data}")
    expect(alice.get(f"{long['id']}/download/"), 404, "download while running")
    t_cancel = time.monotonic()
    body = expect(alice.post(f"{long['id']}/cancel/"), 200, "cancel running")
    check(body.get("message"), f"cancel: no message: {body}")
    data = wait_for(alice, long["id"], lambda d: d["status"] == "cancelled", timeout=5)
    progress_at_cancel = data["progress"]
    log(f"cancel/ while running at {progress_at_cancel}%: {body} -> status cancelled after "
        f"{time.monotonic() - t_cancel:.2f}s")
    # The freed worker picks the next report up: with one worker process, it
    # could not start before the cancelled one (another ~35 s of rows) stopped.
    after = create(alice, {"report_type": "sales", "title": "After cancel", "force": True,
                           "parameters": SALES_PARAMETERS}, "create after cancel")
    data = wait_for(alice, after["id"], finished, timeout=10)
    freed = time.monotonic() - t_cancel
    timings["cancel -> single worker free again (next report completed)"] = freed
    check(data["status"] == "completed", f"report after cancel: {data}")
    check(freed < 8, f"the worker took {freed:.1f}s to get free after cancel")
    time.sleep(1.5)
    detail = expect(alice.get(f"{long['id']}/"), 200, "detail cancelled")
    check(detail["status"] == "cancelled", f"cancelled report changed: {detail['status']}")
    check(detail["progress"] < 100 and detail["progress"] <= progress_at_cancel + 15,
          f"cancelled report kept progressing: {progress_at_cancel} -> {detail['progress']}")
    check(detail["download_url"] is None, f"cancelled report has a download_url: {detail}")
    expect(alice.get(f"{long['id']}/download/"), 404, "download cancelled")
    leftovers = [p for p in args.media_root.rglob("*") if long["id"] in str(p)]
    check(not leftovers, f"partial files left behind for the cancelled report: {leftovers}")
    body = expect(alice.post(f"{long['id']}/cancel/"), 409, "cancel twice")
    log(f"worker stopped: next report completed {freed:.2f}s after cancel; cancelled report "
        f"stayed at {detail['progress']}%, no file, download 404, second cancel 409 {body}")

    # 8. Regenerate: a new report with the same type, title, parameters, priority.
    t = time.monotonic()
    regen = expect(alice.post(f"{sid}/regenerate/"), 201, "regenerate")
    check(regen.get("id") and regen["id"] != sid, f"regenerate id: {regen}")
    for key in ("report_type", "title", "parameters", "priority"):
        check(regen[key] == sales[key], f"regenerate {key}: {regen[key]!r} != {sales[key]!r}")
    data = wait_for(alice, regen["id"], finished, timeout=timeout)
    timings["regenerate -> completed"] = time.monotonic() - t
    check(data["status"] == "completed" and data["progress"] == 100, f"regenerated: {data}")
    check(download_ok(alice, regen["id"], "download regenerated").removeprefix(b"\xef\xbb\xbf")
          == EXPECTED_SALES_CSV, "regenerated download differs")
    log(f"regenerate/ -> 201 id={regen['id']}, completed in {timings['regenerate -> completed']:.2f}s, "
        f"same CSV")
    expect(alice.post(f"{sid}/cancel/"), 409, "cancel completed")

    # 9. Urgent reports go through reports_high_priority, which the worker consumes too.
    t = time.monotonic()
    urgent = create(alice, {"report_type": "sales", "title": "Urgent", "priority": "urgent",
                            "force": True, "parameters": SALES_PARAMETERS}, "create urgent")
    data = wait_for(alice, urgent["id"], finished, timeout=timeout)
    timings["urgent report -> completed"] = time.monotonic() - t
    check(data["status"] == "completed", f"urgent: {data}")
    log(f"urgent report (queue reports_high_priority) completed in "
        f"{timings['urgent report -> completed']:.2f}s")

    # 10. List filters, ordering and recent/.
    listing = expect(alice.get("", params={"status": "completed"}), 200, "list completed")
    ids = {r["id"] for r in listing["results"]}
    check({sid, regen["id"], slow["id"], after["id"], urgent["id"]} <= ids and long["id"] not in ids,
          f"list ?status=completed: {ids}")
    listing = expect(alice.get("", params={"report_type": "slow"}), 200, "list slow")
    check({r["id"] for r in listing["results"]} == {slow["id"], long["id"]},
          f"list ?report_type=slow: {listing}")
    recent = expect(alice.get("recent/"), 200, "recent")
    check(recent and recent[0]["id"] == urgent["id"], f"recent/ newest first: {recent[:1]}")
    log(f"list filters (status, report_type) and recent/ OK; alice has "
        f"{expect(alice.get(''), 200, 'list')['count']} reports")

    # Hand the ids to the shell script for its log checks.
    print("REPORT_IDS " + json.dumps({"sales": sid, "slow": slow["id"], "cancelled": long["id"],
                                      "after_cancel": after["id"], "regenerated": regen["id"],
                                      "urgent": urgent["id"]}), flush=True)
    for name, seconds in timings.items():
        log(f"timing: {name}: {seconds:.2f}s")
    log("ALL HTTP CHECKS PASSED")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as exc:
        log(f"CHECK FAILED: {exc}")
        sys.exit(1)
    except requests.RequestException as exc:
        log(f"HTTP ERROR: {exc!r}")
        sys.exit(1)
