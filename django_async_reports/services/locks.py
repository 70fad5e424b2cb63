"""Per-user locks held until the transaction ends: the database serialises what must not race."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import connection


def lock_for_user(user: Any, name: str) -> None:
    """Serialise transactions of ``user`` (or a user's pk) taking the lock ``name`` (PostgreSQL).

    A transaction-scoped advisory lock: identical requests, one Idempotency-Key,
    or a per-user cap checked and then taken. Elsewhere (SQLite, development)
    writes are serialised by the database itself.
    """
    if connection.vendor != "postgresql":
        return
    user_id = getattr(user, "pk", user)  # a user, or their primary key
    key = int(hashlib.sha256(f"{user_id}:{name}".encode()).hexdigest()[:15], 16)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
