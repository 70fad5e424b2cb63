"""The webhook's HTTP POST, over a connection pinned to an address checked at send time.

:func:`send` makes one POST and says what it came to: ``sent`` (a 2xx
answer), ``retry`` (408, 429, 5xx, a timeout, a connection or DNS error:
it may work later) or ``failed`` (a refused address, a redirect or another
answer: it will not).

The target's host is resolved and every address checked (:mod:`.network`)
just before connecting, and the connection goes to one of those very
addresses while the ``Host`` header and TLS verification use the URL's host
name: a second, different DNS answer (DNS rebinding) is never used. One
timeout bounds the whole exchange. Redirects are not followed.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from .network import (
    WebhookHostUnresolved,
    WebhookTarget,
    WebhookURLRefused,
    parse_webhook_url,
    resolve_target,
)

MAX_RESPONSE_BYTES = 2048  # read (and record) no more of an answer


@dataclass
class HTTPResult:
    """An answer: its status, reason, first ``MAX_RESPONSE_BYTES`` and ``Retry-After`` seconds."""

    status: int
    reason: str
    body: bytes
    retry_after: int | None = None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address while the Host header names the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As :class:`_PinnedHTTPConnection`, with TLS verified for the URL's host name."""

    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)


def post(target: WebhookTarget, body: bytes, headers: dict[str, str], timeout: float) -> HTTPResult:
    """POST ``body`` to ``target`` without following redirects, within ``timeout`` seconds.

    The host is resolved and every address checked now (raising
    :class:`~.network.WebhookURLRefused`); the connection goes to a checked address, so
    a second, different DNS answer cannot be used. ``timeout`` bounds the
    whole exchange, not each read: a server that trickles bytes is cut off.
    """
    addresses = resolve_target(target)
    started = time.monotonic()

    def remaining() -> float:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            raise TimeoutError(f"no answer within {timeout:g}s")
        return left

    conn: http.client.HTTPConnection | None = None
    last_error: OSError | None = None
    for _family, address in addresses:
        if target.scheme == "https":
            candidate: http.client.HTTPConnection = _PinnedHTTPSConnection(
                target.host,
                target.port,
                address=address,
                timeout=remaining(),
                context=ssl.create_default_context(),
            )
        else:
            candidate = _PinnedHTTPConnection(
                target.host, target.port, address=address, timeout=remaining()
            )
        try:
            candidate.connect()
        except OSError as exc:
            candidate.close()
            last_error = exc
            continue
        conn = candidate
        break
    if conn is None:
        assert last_error is not None
        raise last_error

    expired = threading.Event()
    active = conn

    def cut_off() -> None:
        expired.set()
        sock = active.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog: threading.Timer | None = None
    try:
        watchdog = threading.Timer(remaining(), cut_off)
        watchdog.daemon = True
        watchdog.start()
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(MAX_RESPONSE_BYTES)
        retry_after = response.getheader("Retry-After")
        return HTTPResult(
            status=response.status,
            reason=response.reason,
            body=data,
            retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(f"no answer within {timeout:g}s") from exc
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()
        conn.close()


def classify(result: HTTPResult) -> tuple[str, str]:
    """("sent" | "retry" | "failed", error text) for an HTTP answer."""
    status = result.status
    if 200 <= status < 300:
        return "sent", ""
    snippet = result.body[:500].decode("utf-8", "replace").strip()
    error = f"HTTP {status} {result.reason}".strip() + (f": {snippet}" if snippet else "")
    if 300 <= status < 400:
        return "failed", f"{error} (redirects are not followed)"
    if status in (408, 429) or status >= 500:
        return "retry", error
    return "failed", error


def send(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[str, str, HTTPResult | None]:
    """POST ``body`` to ``url``: ``("sent" | "retry" | "failed", error text, the answer)``.

    The answer is None when there was none. Errors other than the network's,
    the address checks' and HTTP's propagate.
    """
    try:
        result = post(parse_webhook_url(url), body, headers, timeout)
    except WebhookHostUnresolved as exc:
        return "retry", str(exc), None  # DNS may answer next time
    except WebhookURLRefused as exc:
        return "failed", f"Refused: {exc}", None
    except TimeoutError as exc:
        return "retry", f"Timeout: {exc}", None
    except (OSError, http.client.HTTPException) as exc:
        return "retry", f"{type(exc).__name__}: {exc}", None
    outcome, error = classify(result)
    return outcome, error, result
