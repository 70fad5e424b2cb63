"""Real servers on 127.0.0.1 for the delivery tests: SMTP (aiosmtpd) and an HTTP webhook receiver.

Both run in threads of the test process; the in-process tests and the
worker subprocesses of the end-to-end tests reach them over loopback.
"""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- SMTP ----------------------------------------------------------------------------
@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


class _SMTPHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.temporary_failures = 0  # answer 451 to the next N messages
        self.drops_after_data = 0  # take the next N messages, then hang up before the 250
        self.refused: set[str] = set()  # answer 550 to these recipients
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.temporary_failures:
                self.temporary_failures -= 1
                return "451 4.3.0 Try again later"
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
            if self.drops_after_data:
                # The message is taken (and would be delivered), but the client never
                # hears so: to it, the connection dropped after DATA.
                self.drops_after_data -= 1
                server.transport.close()
        return "250 Message accepted"


class SMTPServer:
    """aiosmtpd on 127.0.0.1: every message it accepted, and knobs to make it fail."""

    def __init__(self) -> None:
        self.handler = _SMTPHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.temporary_failures = 0
            self.handler.drops_after_data = 0
            self.handler.refused.clear()

    def fail_next(self, count: int = 1) -> None:
        with self.handler.lock:
            self.handler.temporary_failures = count

    def drop_after_data(self, count: int = 1) -> None:
        with self.handler.lock:
            self.handler.drops_after_data = count

    def refuse(self, *addresses: str) -> None:
        self.handler.refused.update(a.lower() for a in addresses)

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def django_settings(self) -> dict[str, Any]:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": self.port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": 5,
        }

    def worker_env(self) -> dict[str, str]:
        return {
            "ASYNC_REPORTS_TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "ASYNC_REPORTS_TEST_EMAIL_HOST": "127.0.0.1",
            "ASYNC_REPORTS_TEST_EMAIL_PORT": str(self.port),
        }


def attachments(message: EmailMessage) -> list[tuple[str | None, str, bytes]]:
    """(filename, content type, bytes) of each attachment."""
    found = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        found.append((part.get_filename(), part.get_content_type(), payload))
    return found


def text_body(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None, message
    return body.get_content()


# -- HTTP --------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every request; answers are scripted.

    ``script(500, 500, 200)`` makes the next three requests get those answers;
    after the script, requests get ``default``.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: deque[Answer] = deque()
        self.default = Answer(204)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver.lock:
                    receiver.requests.append(
                        Request(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up (a timeout test)

            do_POST = _handle
            do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def script(self, *answers: int | Answer) -> None:
        with self.lock:
            self.answers.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.answers.clear()
            self.default = Answer(204)

    def received(self) -> list[Request]:
        with self.lock:
            return list(self.requests)
