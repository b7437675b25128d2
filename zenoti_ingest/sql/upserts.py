"""Set-based, newest-wins upserts for the current-state tables, generated from one template.

Every current-state table has a key column and the same bookkeeping columns (`last_event_at`,
`last_received_at`, `last_ingest_id`, `updated_at`); an event may carry only some columns and
updates only those. Column types come from the database catalog, so the migrations stay the
one place that declares them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import psycopg
from psycopg import sql

ORDER_COLUMNS = ("last_event_at", "last_received_at", "last_ingest_id")

_COLUMN_TYPES = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""


_column_types: dict[str, dict[str, str]] = {}


def column_types(conn: psycopg.Connection, table: str, columns: Sequence[str]) -> dict[str, str]:
    """{column: SQL type} of a table, read once per process (again if a column is new)."""
    types = _column_types.get(table)
    if types is None or not types.keys() >= set(columns):
        types = _column_types[table] = dict(conn.execute(_COLUMN_TYPES, {"table": table}))
    return types


def upsert(table: str, key: str, rank: str | None, columns: Sequence[str],
           types: dict[str, str]) -> sql.Composed:
    """INSERT … SELECT FROM unnest(arrays) ORDER BY key ON CONFLICT DO UPDATE the given columns
    WHERE the incoming row is not older: (event time, rank, receipt, ingest id), NULL times
    first. Equal means the same delivery again (a reprocess): it may rewrite its own row."""
    return _upsert(table, key, rank, tuple(columns), tuple(types[c] for c in columns))


@functools.cache
def _upsert(table: str, key: str, rank: str | None, columns: tuple[str, ...],
            types: tuple[str, ...]) -> sql.Composed:
    ident = sql.Identifier
    names = sql.SQL(", ").join(map(ident, columns))
    arrays = sql.SQL(", ").join(
        sql.SQL("{}::{}[]").format(sql.Placeholder(c), sql.SQL(t))
        for c, t in zip(columns, types, strict=True)
    )
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(ident(c)) for c in columns if c != key
    )

    def order(row: str) -> sql.Composable:
        parts = [sql.SQL("coalesce({}.last_event_at, '-infinity')").format(sql.SQL(row))]
        if rank:
            parts.append(sql.SQL("coalesce({}.{}, -1)").format(sql.SQL(row), ident(rank)))
        parts += [sql.SQL("{}.{}").format(sql.SQL(row), ident(c)) for c in ORDER_COLUMNS[1:]]
        return sql.SQL("({})").format(sql.SQL(", ").join(parts))

    return sql.SQL(
        "INSERT INTO {table} AS t ({names}) SELECT {names} FROM unnest({arrays}) AS n({names}) "
        "ORDER BY {key} ON CONFLICT ({key}) DO UPDATE SET {updates}, updated_at = now() "
        "WHERE {new} >= {old}"
    ).format(table=ident(table), names=names, arrays=arrays, key=ident(key), updates=updates,
             new=order("EXCLUDED"), old=order("t"))
