"""Recompute the current-state tables from the archive alone and report how the live ones differ.

Everything happens in one REPEATABLE READ transaction that is always rolled back: a temporary
table per current-state table (same columns and key) hides the live one from the worker's own
unqualified upserts, every processed delivery is projected again in order of receipt with
today's schemas and handlers, and the two are compared key by key. The live tables are only
read. The worker's code is reused as it is (envelope, projection, newest-wins upsert).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql as pgsql

from worker.operations import deadletters
from worker.pipeline import batch, handlers, projection, store
from zenoti_ingest import errors, sql

# Columns that say when or by which path a row was written, not what the events made of it:
# the write time, and the per-column versions (migration 0009) that differ between delivery
# orders reaching the same state.
BOOKKEEPING = frozenset({"updated_at", "version", "newest_columns", "stragglers"})
BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class Difference:
    key: str
    columns: tuple[str, ...]  # the columns whose values differ


@dataclass(frozen=True, slots=True)
class TableReport:
    """One table: rows rebuilt and live, and the keys that differ (counts, then the first few)."""

    table: str
    key: str
    rebuilt: int
    live: int
    missing: int  # rebuilt from the archive, absent from the live table
    extra: int  # in the live table, not rebuilt from the archive
    different: int  # in both, with other values
    missing_keys: tuple[str, ...]
    extra_keys: tuple[str, ...]
    different_rows: tuple[Difference, ...]

    @property
    def differs(self) -> bool:
        return bool(self.missing or self.extra or self.different)


@dataclass(frozen=True, slots=True)
class Report:
    deliveries: int  # processed deliveries read from the archive
    not_projected: tuple[str, ...]  # of those, ingest ids today's schemas reject
    tables: tuple[TableReport, ...]
    # The oldest delivery read, when older ones were seen (the event log or the dedup ledger
    # has them) but their archive rows expired: what they alone wrote cannot be rebuilt.
    pruned_before: datetime | None = None

    @property
    def differs(self) -> bool:
        return any(t.differs for t in self.tables)


def count_processed(conn: psycopg.Connection) -> int:
    """How many processed deliveries a rebuild reads (for a progress bar)."""
    return conn.execute(
        sql.queries["count_archived"], {"status": deadletters.PROCESSED}
    ).fetchone()[0]


def rebuild(
    conn: psycopg.Connection,
    tables: Sequence[str] = (),
    limit: int = 20,
    progress: Callable[[int], None] = lambda _: None,
    batch_size: int = BATCH_SIZE,
) -> Report:
    """Rebuild every current-state table in scratch and compare the `tables` asked (all by
    default), listing up to `limit` keys per kind of difference. `conn` is in autocommit mode;
    nothing it does is committed."""
    previous = conn.isolation_level
    # One snapshot: the archive and the live tables as of the same moment, workers or not.
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction(force_rollback=True):
            schemas = _scratch_tables(conn)
            deliveries, not_projected, oldest = _project_archive(conn, batch_size, progress)
            reports = tuple(
                _compare(conn, handlers.TABLES[name], schemas[name], limit)
                for name in (tables or handlers.TABLES)
            )
            since = oldest or datetime.max.replace(tzinfo=UTC)
            [pruned] = conn.execute(
                sql.queries["rebuild_pruned_before"], {"since": since}
            ).fetchone()
    finally:
        conn.isolation_level = previous
    return Report(deliveries, tuple(not_projected), reports, since if pruned else None)


def _scratch_tables(conn: psycopg.Connection) -> dict[str, str]:
    """A temporary copy of every current-state table (the projections may write to any);
    {table: schema of the live one}."""
    schemas = {}
    for name in handlers.TABLES:
        [schema] = conn.execute(sql.queries["rebuild_table_schema"], {"table": name}).fetchone()
        schemas[name] = schema
        conn.execute(
            _composed(
                "rebuild_scratch_table",
                scratch=pgsql.Identifier(name),
                live=pgsql.Identifier(schema, name),
            )
        )
        [scratch] = conn.execute(sql.queries["rebuild_is_scratch"], {"table": name}).fetchone()
        if not scratch:  # never write to a live table
            raise errors.ZenotiIngestError(f"rebuild: {name} does not resolve to its scratch copy")
    return schemas


def _project_archive(
    conn: psycopg.Connection, batch_size: int, progress: Callable[[int], None]
) -> tuple[int, list[str], datetime | None]:
    """Feed every processed delivery, in order of receipt, through the worker's projection and
    upserts into the scratch tables; (deliveries read, ids not projected, oldest receipt)."""
    read, not_projected, oldest = 0, [], None
    params = {**deadletters.Filters().params(), "status": deadletters.PROCESSED}
    # Ids only through the server-side cursor (sorting bodies would spill gigabytes); bodies are
    # loaded a batch at a time.
    with conn.cursor(name="rebuild_archive") as cursor:
        cursor.execute(sql.queries["select_archived"], params)
        while chunk := cursor.fetchmany(batch_size):
            ids = [str(ingest_id) for (ingest_id,) in chunk]
            items = [
                batch.prepare(d, 1)
                for d in deadletters.load_archived(conn, ids, deadletters.PROCESSED)
            ]
            if oldest is None and items:
                oldest = items[0].received_at
            not_projected += [i.delivery.ingest_id for i in items if i.rejection is not None]
            for round_ in _rounds(i for i in items if i.rejection is None):
                for table, rows in batch._newest_per_key(round_):
                    store.upsert(conn, table, rows)
            read += len(ids)
            progress(len(ids))
    return read, not_projected, oldest


def _rounds(items: Iterable[batch.Prepared]) -> Iterator[list[batch.Prepared]]:
    """Split a batch so that no key appears twice in a round, each key's events in order.

    Applying round after round is applying the deliveries one by one in order of receipt, the
    in-order state, whatever rows a batch collapses (an older event may carry columns a newer
    one lacks).
    """
    rounds: list[list[batch.Prepared]] = []
    last: dict[tuple[str, object], int] = {}
    for item in items:
        keys = [
            (name, row[handlers.TABLES[name].key])
            for name, rows in item.projected.rows.items()
            for row in rows
        ]
        index = max((last[k] + 1 for k in keys if k in last), default=0)
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(item)
        last.update((k, index) for k in keys)
    yield from rounds


def _compare(
    conn: psycopg.Connection, table: projection.Table, schema: str, limit: int
) -> TableReport:
    ident = pgsql.Identifier
    scratch, live, key = ident("pg_temp", table.name), ident(schema, table.name), ident(table.key)
    columns = [
        c
        for (c,) in conn.execute(sql.queries["rebuild_columns"], {"table": table.name})
        if c not in BOOKKEEPING
    ]
    rebuilt, live_rows = conn.execute(
        _composed("rebuild_row_counts", scratch=scratch, live=live)
    ).fetchone()
    missing = _keys_only_in(conn, scratch, live, key, limit)
    extra = _keys_only_in(conn, live, scratch, key, limit)
    different = conn.execute(
        _composed(
            "rebuild_different",
            scratch=scratch,
            live=live,
            key=key,
            checks=pgsql.SQL(", ").join(
                pgsql.SQL("CASE WHEN s.{0} IS DISTINCT FROM l.{0} THEN {1} END").format(
                    ident(c), pgsql.Literal(c)
                )
                for c in columns
            ),
            scratch_columns=pgsql.SQL(", ").join(
                pgsql.SQL("s.{}").format(ident(c)) for c in columns
            ),
            live_columns=pgsql.SQL(", ").join(pgsql.SQL("l.{}").format(ident(c)) for c in columns),
        ),
        {"limit": limit},
    ).fetchall()
    return TableReport(
        table=table.name,
        key=table.key,
        rebuilt=rebuilt,
        live=live_rows,
        missing=missing[0],
        extra=extra[0],
        different=different[0][0] if different else 0,
        missing_keys=missing[1],
        extra_keys=extra[1],
        different_rows=tuple(Difference(k, tuple(cs)) for _, k, cs in different[:limit]),
    )


def _keys_only_in(
    conn: psycopg.Connection,
    a: pgsql.Identifier,
    b: pgsql.Identifier,
    key: pgsql.Identifier,
    limit: int,
) -> tuple[int, tuple[str, ...]]:
    rows = conn.execute(
        _composed("rebuild_keys_only_in", a=a, b=b, key=key), {"limit": limit}
    ).fetchall()
    return (rows[0][0] if rows else 0), tuple(k for _, k in rows[:limit])


def _composed(name: str, **identifiers: pgsql.Composable) -> pgsql.Composed:
    """A named query whose {placeholders} are identifiers (or composed SQL) of ours."""
    return pgsql.SQL(sql.queries[name]).format(**identifiers)
