"""A TCP proxy on loopback, between a worker and RabbitMQ, that a test can partition.

``partition()`` stops forwarding in both directions and holds every socket
open: the peers see silence, as across a dead network path, and only their
heartbeats can tell. ``heal()`` drops the held connections (a network that
comes back finds the old sessions gone) and forwards new ones again.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._partitioned = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/{vhost.lstrip('/')}"

    def partition(self) -> None:
        self._partitioned.set()

    def heal(self) -> None:
        with self._lock:
            held, self._sockets = self._sockets, []
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        self._partitioned.clear()

    def close(self) -> None:
        self._closed = True
        self.heal()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._partitioned.is_set():
                with self._lock:
                    self._sockets.append(client)  # silence: held, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            while self._partitioned.is_set() and not self._closed:
                # Dropped on the floor, as a dead path does; the sockets stay open.
                self._partitioned.wait(0.05)
                data = b""
                break
            if data:
                try:
                    sink.sendall(data)
                except OSError:
                    return
