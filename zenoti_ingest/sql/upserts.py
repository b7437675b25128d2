"""Set-based upserts for the current-state tables where the newest event wins per column.

Every current-state table has a key, data columns, the bookkeeping columns
(`last_event_type`, `last_event_at`, `last_received_at`, `last_ingest_id`, `updated_at`) and
the version columns of migration 0009. An event may carry only some data columns: each column
takes the value of the newest event that carried it, whatever order events arrive in, so the
table always equals the in-order state. Column types and numbers come from the catalog, so the
migrations stay the one place that declares them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.adapt import PyFormat

BOOKKEEPING = ("last_event_type", "last_event_at", "last_received_at", "last_ingest_id")
VERSION = "version"

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnum
FROM pg_attribute a
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""


@dataclass(frozen=True, slots=True)
class Column:
    type: str
    number: int  # attnum: how newest_columns and stragglers name a column


_catalog: dict[str, dict[str, Column]] = {}


def columns_of(conn: psycopg.Connection, table: str, needed: Sequence[str]) -> dict[str, Column]:
    """{column: Column} of a table, read once per process (again if a column is new)."""
    known = _catalog.get(table)
    if known is None or not known.keys() >= set(needed):
        rows = conn.execute(_COLUMNS, {"table": table})
        known = _catalog[table] = {name: Column(kind, number) for name, kind, number in rows}
    return known


def upsert(table: str, key: str, columns: Sequence[str], catalog: dict[str, Column]) -> str:
    """The statement for rows carrying `columns` (key, data, bookkeeping and `version`)."""
    return _upsert(
        table, key, tuple(columns), tuple((c, catalog[c]) for c in columns if c != VERSION)
    )


def _binary(name: str) -> sql.Placeholder:
    """Arrays go in binary: the text format escapes each element with a regular expression."""
    return sql.Placeholder(name, PyFormat.BINARY)


@functools.cache  # rendering a Composed costs about 1 ms: once per shape, not per batch
def _upsert(
    table: str, key: str, columns: tuple[str, ...], typed: tuple[tuple[str, Column], ...]
) -> str:
    ident, literal = sql.Identifier, sql.Literal
    stored = [c for c in columns if c != VERSION]
    data = [(c, col.number) for c, col in typed if c != key and c not in BOOKKEEPING]
    numbers = sql.SQL("ARRAY[{}]::smallint[]").format(
        sql.SQL(", ").join(literal(n) for _, n in data)
    )
    newer = sql.SQL("EXCLUDED.version >= t.version")

    def current(number: sql.Composable) -> sql.Composable:
        """The version of the value a column holds now ('' if no event wrote it)."""
        return sql.SQL(
            "CASE WHEN t.stragglers ? ({n})::text THEN t.stragglers ->> ({n})::text "
            "WHEN {n} = ANY(t.newest_columns) THEN t.version ELSE '' END COLLATE \"C\""
        ).format(n=number)

    def wins(number: sql.Composable) -> sql.Composable:
        return sql.SQL("EXCLUDED.version >= {}").format(current(number))

    sets = [
        sql.SQL("{c} = CASE WHEN {w} THEN EXCLUDED.{c} ELSE t.{c} END").format(
            c=ident(c), w=wins(literal(n))
        )
        for c, n in data
    ] + [
        sql.SQL("{c} = CASE WHEN {newer} THEN EXCLUDED.{c} ELSE t.{c} END").format(
            c=ident(c), newer=newer
        )
        for c in BOOKKEEPING
        if c in columns
    ]
    # Newer: its columns leave the stragglers; the previous newest event's other columns join
    # them. Older: the columns it won become stragglers at its version.
    stragglers = sql.SQL(
        "stragglers = CASE WHEN {newer} THEN "
        "(t.stragglers - (SELECT array_agg(x::text) FROM unnest({numbers}) x)) || coalesce("
        "(SELECT jsonb_object_agg(a::text, t.version) FROM unnest(t.newest_columns) a "
        "WHERE a <> ALL({numbers})), '{{}}') "
        "ELSE t.stragglers || coalesce((SELECT jsonb_object_agg(a::text, EXCLUDED.version) "
        "FROM unnest({numbers}) a WHERE {wins_a}), '{{}}') END"
    ).format(newer=newer, numbers=numbers, wins_a=wins(sql.SQL("a")))
    names = sql.SQL(", ").join(map(ident, stored))
    arrays = sql.SQL(", ").join(
        [sql.SQL("{}::{}[]").format(_binary(c), sql.SQL(col.type)) for c, col in typed]
        + [sql.SQL("{}::text[]").format(_binary(VERSION))]
    )
    return (
        sql.SQL(
            "INSERT INTO {table} AS t ({names}, version, newest_columns) "
            "SELECT {names}, version, {numbers} FROM unnest({arrays}) AS n({names}, version) "
            "ORDER BY {key} ON CONFLICT ({key}) DO UPDATE SET {sets}, {stragglers}, "
            "newest_columns = CASE WHEN {newer} THEN {numbers} ELSE t.newest_columns END, "
            "version = CASE WHEN {newer} THEN EXCLUDED.version ELSE t.version END, "
            "updated_at = now()"
        )
        .format(
            table=ident(table),
            names=names,
            numbers=numbers,
            arrays=arrays,
            key=ident(key),
            sets=sql.SQL(", ").join(sets),
            stragglers=stragglers,
            newer=newer,
        )
        .as_string()
    )
