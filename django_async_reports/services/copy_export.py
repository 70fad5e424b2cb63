"""The CSV fast path: PostgreSQL's ``COPY ... TO STDOUT`` writes a QuerySet's rows.

When ``rows()`` returns a QuerySet and the report is CSV on PostgreSQL, the
server formats the CSV (a whole report in about 2.2 times bare COPY's time,
against 5.4 times on the rows path: ``benchmarks/copy_fast_path.py``). The
file is the same bytes as the rows path writes
(:class:`~django_async_reports.writers.CSVWriter`), because each column
goes through a SQL expression that prints its value as ``str()`` would in
Python, empty text and NULL alike as an empty cell, with the same formula
neutralisation; line ends become ``\\r\\n`` as ``csv.writer`` writes them.
A column whose type has no such expression (float, JSON, arrays, intervals...),
a field with a Python-side converter, or a one-column report makes
:func:`plan_copy` answer None: the rows path writes that report instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models.query import QuerySet

from .queryset_rows import check_row_queryset

logger = logging.getLogger(__name__)

#: Rows handed to the file and the progress tracker at once (each also checks the cancel flag).
BATCH_ROWS = 2000

# Each expression takes the cheap path first (nested CASE: PostgreSQL does not
# promise to short-circuit AND / OR) and formats by hand only the rarer
# values; figures in benchmarks/copy_fast_path.py. "::text" of a date or a time
# is ISO as Python's: DateStyle is ISO, or psycopg could not read a timestamptz.
#
# Python writes microseconds only when not zero, and then all six; PostgreSQL
# drops their trailing zeros (".5"). "{v}::timestamp(0) = {v}" (a cheap
# rounding) holds for a whole second; other texts are padded to full width.
_CLOCK = (
    "CASE WHEN {v}::{kind}(0) = {v} THEN {v}::text "
    "WHEN octet_length({v}::text) = {width} THEN {v}::text "
    "ELSE rpad({v}::text, {width}, '0') END"
)
# Naive: Django reads a timestamptz as the session zone's wall time when USE_TZ is off.
_NAIVE_TIMESTAMPTZ = _CLOCK.format(v="{c}::timestamp", kind="timestamp", width=26)
# A UTC session: PostgreSQL ends with "+00", Python with "+00:00".
_UTC_TIMESTAMPTZ = (
    "CASE WHEN {c}::timestamptz(0) = {c} THEN {c}::text || ':00' "
    "WHEN octet_length({c}::text) = 29 THEN {c}::text || ':00' "
    "ELSE rpad(left({c}::text, -3), 26, '0') || '+00:00' END"
)
# Another session zone: offsets vary ("+05:30", "-03"), to_char prints them as
# Python does. Before 1973 an offset may have seconds too (a local mean time,
# "-00:44:30"): the offset is worked out there, slowly, from the wall times.
_OFFSET = "({c}::timestamp - ({c} AT TIME ZONE 'UTC'))"
_ZONED_TIMESTAMPTZ = (
    "CASE WHEN {c} >= timestamptz '1973-01-01 00:00:00+00' THEN "
    "replace(to_char({c}, 'YYYY-MM-DD HH24:MI:SS.USTZH:TZM'), '.000000', '') "
    "ELSE " + _NAIVE_TIMESTAMPTZ + " || CASE WHEN {o} < interval '0' THEN '-' ELSE '+' END "
    "|| to_char(CASE WHEN {o} < interval '0' THEN -{o} ELSE {o} END, "
    "CASE WHEN extract(second from {o}) = 0 THEN 'HH24:MI' ELSE 'HH24:MI:SS' END) END"
).replace("{o}", _OFFSET)
# Python prints a Decimal under 1e-6 (or a zero with more than 6 places) in
# exponent form, "1.20E-7", "0E-7"; PostgreSQL never does. Of a numeric's texts
# only "-Infinity" starts with a formula trigger and is not a plain number.
_DECIMAL_DIGITS = "COALESCE(NULLIF(ltrim(replace(abs({c})::text, '.', ''), '0'), ''), '0')"
_DECIMAL = (
    "CASE WHEN scale({c}) <= 6 THEN {c}::text "
    "WHEN scale({c}) IS NULL THEN "  # NaN, Infinity, -Infinity
    "CASE WHEN {c}::text = '-Infinity' THEN {minus_infinity} ELSE {c}::text END "
    "WHEN abs({c}) >= 0.000001 THEN {c}::text "
    "ELSE (CASE WHEN {c} < 0 THEN '-' ELSE '' END) || left({d}, 1) "
    "|| CASE WHEN length({d}) > 1 THEN '.' || substr({d}, 2) ELSE '' END "
    "|| 'E' || (length({d}) - 1 - scale({c}))::text END"
)
# Text: NULL and '' both an empty cell; with neutralisation, writers.csv's rule:
# a leading = + - @ tab or CR gets a "'" unless the text is a plain number.
# Every trigger sorts below "A" byte-wise, so most text is out after one
# memcmp; ascii() (the first character's code) finds the few that start with
# a trigger, and only those meet the regular expression.
_TEXT = "NULLIF({c}, '')"
_NEUTRALIZED_TEXT = (
    "CASE WHEN {c} COLLATE \"C\" > 'A' THEN {c} "
    "WHEN ascii({c}) IN (9, 13, 43, 45, 61, 64) THEN "
    "CASE WHEN {c} ~ '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?$' "
    "THEN {c} ELSE '''' || {c} END "
    "ELSE NULLIF({c}, '') END"
)

# How each type reads in Python's str(), by PostgreSQL type name; "{text}"
# stands for the text expression above, neutralised or not. A timestamptz
# depends on the connection: see _timestamptz().
_EXPRESSIONS: dict[str, str] = {
    "int2": "{c}::text",
    "int4": "{c}::text",
    "int8": "{c}::text",
    "uuid": "{c}::text",
    "text": "{text}",
    "varchar": "{text}",
    "bool": "CASE WHEN {c} THEN 'True' WHEN NOT {c} THEN 'False' END",
    "numeric": _DECIMAL,
    "date": "{c}::text",
    "time": _CLOCK.format(v="{c}", kind="time", width=15),
    "timestamp": _CLOCK.format(v="{c}", kind="timestamp", width=26),
}


@dataclass(frozen=True)
class CopyPlan:
    """A ``COPY`` statement, its values already bound, and the database alias to run it on."""

    alias: str
    statement: str


def plan_copy(
    queryset: QuerySet[Any], columns: Sequence[str], *, neutralize: bool, owner: str
) -> CopyPlan | None:
    """The COPY statement writing ``queryset`` as the CSV writer would; None when it cannot.

    Raises :class:`~django_async_reports.exceptions.InvalidGenerator` for a
    QuerySet of model instances and ``ValueError`` when the row width is not
    the number of columns, as the rows path does.
    """
    check_row_queryset(queryset, owner)
    alias = queryset.db
    connection = connections[alias]
    if connection.vendor != "postgresql" or len(columns) < 2:
        # One column: csv.writer quotes an empty row ('""'), COPY writes NULL as nothing.
        return None
    if connection.in_atomic_block:
        # COPY runs on a connection of its own, which cannot see this transaction's
        # uncommitted rows (a host's TestCase, a generation called inside atomic()).
        return None
    compiler = queryset.query.get_compiler(using=alias)
    try:
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet):
        return None
    fields = [select[0] for select in compiler.select[: compiler.col_count]]
    if len(fields) != len(columns):
        raise ValueError(f"{owner}.rows() yielded {len(fields)} values for {len(columns)} columns.")
    if compiler.has_composite_fields(fields):
        return None
    import psycopg

    connection.ensure_connection()
    # Client-side binding with the connection's adapters: libpq quotes every
    # value (COPY takes no server-side parameters).
    bound = psycopg.ClientCursor(connection.connection).mogrify(sql, tuple(params))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({bound}) AS q LIMIT 0")
        type_names = [_type_name(column.type_code) for column in cursor.description]
    if _converted_in_python(compiler, fields, type_names):
        logger.debug("%s: a field converts its values in Python; the rows path writes it.", owner)
        return None
    expressions = []
    known = {**_EXPRESSIONS, "timestamptz": _timestamptz(connection)}
    for index, type_name in enumerate(type_names[: len(columns)]):
        template = known.get(type_name)
        if template is None:
            logger.debug("%s: column %d is %s; the rows path writes it.", owner, index, type_name)
            return None
        expressions.append(_cell(template, f"q.c{index}", neutralize))
    aliases = ", ".join(f"c{index}" for index in range(len(type_names)))
    select = f"SELECT {', '.join(expressions)} FROM ({bound}) AS q({aliases})"
    return CopyPlan(alias, f"COPY ({select}) TO STDOUT WITH (FORMAT csv)")


def _converted_in_python(compiler: Any, fields: list[Any], type_names: list[str]) -> bool:
    """Whether Django changes a value of ``fields`` after reading it (``from_db_value``...).

    The ``int()`` / ``Decimal()`` an expression adds for its ``output_field``
    changes nothing when the column already is an integer / a numeric.
    """
    for index, (converters, expression) in compiler.get_converters(fields).items():
        if converters != [getattr(expression, "convert_value", None)]:
            return True
        kind = expression.output_field.get_internal_type()
        if kind.endswith("IntegerField") and type_names[index] in ("int2", "int4", "int8"):
            continue
        if kind == "DecimalField" and type_names[index] == "numeric":
            continue
        return True
    return False


def _timestamptz(connection: Any) -> str:
    """How a timestamptz that ``connection`` reads prints in Python, as a template.

    Django sets the session's time zone to ``connection.timezone_name`` and
    gives the values read that zone (none at all when ``USE_TZ`` is off).
    """
    if connection.timezone is None:
        return _NAIVE_TIMESTAMPTZ
    if connection.timezone_name in ("UTC", "Etc/UTC"):
        return _UTC_TIMESTAMPTZ
    return _ZONED_TIMESTAMPTZ


def _type_name(oid: int) -> str:
    from psycopg.postgres import types

    info = types.get(oid)
    return info.name if info is not None else str(oid)


def _cell(template: str, column: str, neutralize: bool) -> str:
    """The SQL printing ``column`` as the CSV writer would."""
    text = (_NEUTRALIZED_TEXT if neutralize else _TEXT).format(c=f"{column}::text")
    return template.format(
        c=column,
        d=_DECIMAL_DIGITS.format(c=column),
        text=text,
        minus_infinity="'''-Infinity'" if neutralize else "'-Infinity'",
    )


def copy_rows(plan: CopyPlan, fileobj: IO[bytes], advance: Callable[[int], bool]) -> bool:
    """Append the CSV rows of ``plan`` to ``fileobj``; False when ``advance`` said stop.

    ``advance(n)`` is called every :data:`BATCH_ROWS` rows, as the rows path
    calls the progress tracker. COPY runs on a connection of its own: the
    tracker's progress writes and cancel checks use the usual one meanwhile.
    """
    connection = connections.create_connection(plan.alias)
    try:
        connection.ensure_connection()
        # Database errors as django.db's, as the rows path raises them.
        with (
            connection.wrap_database_errors,
            connection.connection.cursor() as cursor,
            cursor.copy(plan.statement) as copy,
        ):
            for batch in _batches(copy):
                fileobj.write(_crlf(batch))
                if not advance(len(batch)):
                    raise _Stopped  # leaving the block cancels the COPY
    except _Stopped:
        return False
    finally:
        connection.close()
    return True


def _batches(copy: Any) -> Iterator[list[Any]]:
    """The rows of ``copy`` in lists of :data:`BATCH_ROWS`; PostgreSQL sends one row a message.

    Iterating the ``Copy`` object is psycopg's own loop over the messages (its
    errors, and the end of the data, included): measured faster here than
    taking them one by one off libpq with ``get_copy_data``.
    """
    batch: list[Any] = []
    for row in copy:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


class _Stopped(Exception):
    """The tracker asked to stop (a cancel): ends the COPY early."""


def _crlf(rows: list[Any]) -> bytes:
    """The rows with csv.writer's "\\r\\n" line ends; a newline inside a quoted cell stays."""
    data = b"".join(rows)
    if data.count(b"\n") == len(rows):
        return data.replace(b"\n", b"\r\n")
    return b"\r\n".join(row[:-1] for row in rows) + b"\r\n"
