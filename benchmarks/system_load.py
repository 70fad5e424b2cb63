"""Requests per second of one GET URL over keep-alive connections, from a process of its own.

``wrk`` (Debian's package) when it is on the PATH, else this module run as a
script: one process per connection, each a loop of ``http.client`` requests on
one kept-alive connection. Either way the load comes from another process than
the server's, on loopback; non-2xx answers and socket errors are counted, not
left out.

    python benchmarks/system_load.py URL --token TOKEN --seconds 5 --connections 4
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def default_tool() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def measure(url: str, token: str, seconds: float, connections: int, tool: str) -> dict:
    """``requests``, ``errors``, ``seconds`` and ``rps`` of ``seconds`` of load on ``url``."""
    if tool == "wrk":
        return _wrk(url, token, seconds, connections)
    command = [sys.executable, __file__, url, "--token", token]
    command += ["--seconds", str(seconds), "--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _wrk(url: str, token: str, seconds: float, connections: int) -> dict:
    threads = min(2, connections)
    command = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
    ]
    command += ["-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, elapsed = int(found[1]), float(found[2]) * UNITS[found[3]]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {"requests": requests, "errors": errors, "seconds": elapsed, "rps": requests / elapsed}


def _hammer(job: tuple[str, str, float]) -> tuple[int, int, float]:
    """One connection's loop: (2xx answers, other answers and errors, seconds)."""
    url, token, seconds = job
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": f"Bearer {token}", "Connection": "keep-alive"}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    ok = errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            response.read()
            if 200 <= response.status < 300:
                ok += 1
            else:
                errors += 1
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
    elapsed = time.perf_counter() - started
    conn.close()
    return ok, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    jobs = [(args.url, args.token, args.seconds)] * args.connections
    with multiprocessing.Pool(args.connections) as pool:
        results = pool.map(_hammer, jobs)
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    # Each connection's own rate, added up: they ran side by side for about the same time.
    rps = sum(r[0] / r[2] for r in results)
    elapsed = max(r[2] for r in results)
    print(json.dumps({"requests": ok, "errors": errors, "seconds": elapsed, "rps": rps}))


if __name__ == "__main__":
    main()
