"""The connection the package publishes on: bounded in time, even by a blocked broker.

Celery's producer pool closes a connection that failed a publish with the
AMQP close handshake, and a broker that blocks publishers (a memory or disk
alarm) stops reading that connection: the close, and the web request behind
it, would wait forever. The package's messages go out on a connection of
its own instead, one per thread and process, whose socket reads and writes
time out, and which is dropped without a handshake when a publish fails.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

_local = threading.local()


def connection(app: Any, timeout: float) -> Any:
    """This thread's publishing connection on ``app``'s broker (made on first use).

    Made again in a forked child (a socket shared with the parent would mix
    both processes' frames), and for another app or broker URL.
    """
    app = getattr(app, "_get_current_object", lambda: app)()  # celery.current_app is a proxy
    key = (os.getpid(), id(app), app.conf.broker_write_url)
    held = getattr(_local, "held", None)
    if held is not None and held[0] == key:
        return held[1]
    drop()
    conn = open_connection(app, timeout)
    _local.held = (key, conn)
    return conn


def open_connection(app: Any, timeout: float) -> Any:
    """A new (lazy) connection to ``app``'s broker whose connect, reads and writes time out.

    One connection attempt: kombu would otherwise retry a refused one until
    its timeout. The caller closes it (``with``), or keeps it (:func:`connection`).
    """
    app = getattr(app, "_get_current_object", lambda: app)()
    return app.connection_for_write(
        connect_timeout=timeout,
        transport_options={"read_timeout": timeout, "write_timeout": timeout, "max_retries": 0},
    )


def drop() -> None:
    """Forget this thread's connection, closing its socket without waiting on the broker."""
    held = getattr(_local, "held", None)
    _local.held = None
    if held is not None and held[0][0] == os.getpid():
        with contextlib.suppress(Exception):
            held[1].collect(socket_timeout=0.1)
