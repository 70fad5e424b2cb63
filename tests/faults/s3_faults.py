"""An HTTP proxy in front of the S3 server that answers S3's own errors when told to.

S3 fails as ``503 SlowDown`` (throttling) or ``500 InternalError``; botocore
retries those a few times, then raises. ``fail(methods)`` makes every request
with one of those methods get a ``503 SlowDown`` until ``heal()``; the others
are forwarded to the real (moto) server. Workers and the test use the proxy's
URL as their S3 endpoint.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>fault</RequestId></Error>"
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class S3Faults:
    def __init__(self, endpoint: str) -> None:
        target = urlsplit(endpoint)
        self.target = (target.hostname or "127.0.0.1", target.port or 80)
        self.failing: set[str] = set()
        self.refused: Counter[str] = Counter()  # method -> requests answered 503
        self.lock = threading.Lock()
        faults = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                with faults.lock:
                    failing = self.command in faults.failing
                    if failing:
                        faults.refused[self.command] += 1
                if failing:
                    self._answer(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
                    return
                upstream = http.client.HTTPConnection(*faults.target, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
                    self._answer(response.status, kept, data)
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                # A HEAD answer announces the object's length but carries no body.
                length = headers.get("Content-Length") or headers.get("content-length")
                sent = length if self.command == "HEAD" and length else str(len(data))
                self.send_header("Content-Length", sent)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, *methods: str) -> None:
        """Answer ``503 SlowDown`` to every request with one of ``methods`` from now on."""
        with self.lock:
            self.failing = {m.upper() for m in methods}

    def heal(self) -> None:
        with self.lock:
            self.failing = set()

    def refused_count(self, method: str) -> int:
        with self.lock:
            return self.refused[method.upper()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
