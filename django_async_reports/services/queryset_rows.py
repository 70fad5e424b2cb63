"""Rows of a QuerySet returned by ``rows()``: streamed with ``.iterator()``, never cached whole.

Iterating a QuerySet directly evaluates it and keeps every row in
``_result_cache`` (about 400 bytes a row); ``.iterator()`` reads it in chunks
(a server-side cursor on PostgreSQL), so the worker's memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models.query import (
    FlatValuesListIterable,
    QuerySet,
    ValuesIterable,
    ValuesListIterable,
)

from ..exceptions import InvalidGenerator

#: Rows fetched per round trip: fewer cost round trips, more cost memory.
ITERATOR_CHUNK_SIZE = 2000


def check_row_queryset(queryset: QuerySet[Any], owner: str) -> None:
    """Raise :class:`InvalidGenerator` unless each row of ``queryset`` is a tuple of values.

    ``values_list(...)`` (tuples, named tuples, or single values with
    ``flat=True``) and ``values(...)`` (dicts, read in their key order) have a
    column order; model instances have none, so they are refused with the fix.
    """
    if not issubclass(queryset._iterable_class, (ValuesListIterable, ValuesIterable)) and (
        queryset._iterable_class is not FlatValuesListIterable
    ):
        model = queryset.model.__name__ if queryset.model is not None else "model"
        raise InvalidGenerator(
            f"{owner}.rows() returned a QuerySet of {model} instances, which has no column "
            f"order. Return .values_list(...) with one field per column, in columns order "
            f"(or yield the rows yourself)."
        )


def queryset_rows(queryset: QuerySet[Any], owner: str) -> Iterator[Sequence[Any]]:
    """Each row of ``queryset`` as a sequence, read in chunks (see :func:`check_row_queryset`).

    Checked at once, not at the first row; the cursor is closed when the
    caller closes the returned iterator (a cancel, an error).
    """
    check_row_queryset(queryset, owner)
    return _sequences(queryset)


def _sequences(queryset: QuerySet[Any]) -> Iterator[Sequence[Any]]:
    rows = queryset.iterator(chunk_size=ITERATOR_CHUNK_SIZE)
    try:
        if queryset._iterable_class is FlatValuesListIterable:
            for value in rows:
                yield (value,)
        elif issubclass(queryset._iterable_class, ValuesIterable):
            for mapping in rows:
                yield tuple(mapping.values())
        else:
            yield from rows
    finally:
        rows.close()  # type: ignore[attr-defined]
