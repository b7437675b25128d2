"""Every current-state table the handlers declare is, once migrated, what its projections need:
the declared key, the newest-wins bookkeeping, a column of a fitting type for everything a
projection writes, and grants the least-privilege worker role needs. A forgotten column or
grant fails here rather than on the first live event of its type."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import marshmallow
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from worker.pipeline import handlers, projection
from worker.schemas import fields as zf
from zenoti_ingest import db
from zenoti_ingest.sql import upserts

ROLE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "worker-role.sql"
ROLE = "zenoti_worker"

# What every newest-wins table needs besides its key and data (zenoti_ingest/sql/upserts.py
# and migration 0009): column → type.
BOOKKEEPING = {
    "last_event_type": "text",
    "last_event_at": "timestamp with time zone",
    "last_received_at": "timestamp with time zone",
    "last_ingest_id": "uuid",
    "updated_at": "timestamp with time zone",  # the upsert sets it on update only: a default
}
VERSIONING = {"version": "text", "newest_columns": "smallint[]", "stragglers": "jsonb"}
# Written by no projection, so they need a default: the upsert's INSERT leaves them out.
DEFAULTED = ("updated_at", "stragglers")

# The column types a projected value fits, by its kind (see kind()): an instant goes in a
# timestamptz, a centre-local wall-clock time in a timestamp, never the other way round.
FITS = {
    "UUID": {"uuid"},
    "str": {"text", "character varying"},
    "bool": {"boolean"},
    "int": {"smallint", "integer", "bigint", "numeric"},
    "Decimal": {"numeric"},
    "instant": {"timestamp with time zone"},
    "wall-clock time": {"timestamp without time zone"},
}

# A value of each field type, for a body in which every field the schema declares is present.
VALUES: tuple[tuple[type, Any], ...] = (
    (zf.Guid, lambda: str(uuid.uuid4())),
    (zf.Text, lambda: "7"),
    (marshmallow.fields.Boolean, lambda: True),
    (marshmallow.fields.Integer, lambda: 3),
    (marshmallow.fields.Decimal, lambda: "12.50"),
    (zf.LocalDateTime, lambda: "2024-05-06T10:30:00"),
    (zf.UtcTimestamp, lambda: "2024-05-06T10:30:00Z"),
)
FIRST = datetime(2024, 5, 6, 11, tzinfo=UTC)
LATER = datetime(2024, 5, 7, 11, tzinfo=UTC)

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, d.adbin IS NOT NULL,
       co.collname
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
# The column sets of the table's unique indexes (a primary key's included) that ON CONFLICT
# can use: no predicate, no expression.
_UNIQUE = """
SELECT array_agg(a.attname::text ORDER BY a.attname)
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = %(table)s::regclass AND i.indisunique
  AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid
"""
_PRIVILEGE = "SELECT has_column_privilege(%(role)s, %(table)s, %(column)s, %(privilege)s)"


def full_body(schema: marshmallow.Schema) -> dict[str, Any]:
    """A body in which every field of the schema has a value of its type (one element for a
    list), so that its projection writes every column it can."""
    return {field.data_key or name: value(field) for name, field in schema.load_fields.items()}


def value(field: marshmallow.fields.Field) -> Any:
    if isinstance(field, marshmallow.fields.List):
        return [full_body(field.inner.schema)]
    if isinstance(field, marshmallow.fields.Nested):
        return full_body(field.schema)
    for kind, make in VALUES:
        if isinstance(field, kind):
            return make()
    raise AssertionError(f"no test value for a {type(field).__name__}: add one to VALUES")


BODIES = {event_type: full_body(h.schema) for event_type, h in handlers.HANDLERS.items()}


def kind(value: Any) -> str:
    """A projected value's kind: its type's name, a datetime told by its time zone."""
    if isinstance(value, datetime):
        return "wall-clock time" if value.tzinfo is None else "instant"
    return type(value).__name__


def written() -> dict[str, dict[str, set[str]]]:
    """{table: {column: the kinds of value written to it}}, over every event type."""
    tables: dict[str, dict[str, set[str]]] = {}
    for event_type, handler in handlers.HANDLERS.items():
        applied = projection.Applied(event_type, FIRST, FIRST, str(uuid.uuid4()))
        projected = handler.project(handler.schema.load(BODIES[event_type]), applied)
        for table, rows in projected.rows.items():
            for row in rows:
                for column, value_ in row.items():
                    tables.setdefault(table, {}).setdefault(column, set()).add(kind(value_))
    return tables


WRITTEN = written()


def fits(value_kind: str, column_type: str) -> bool:
    """Whether a value of this kind goes in a column of this type (typmods aside)."""
    return re.sub(r"\(.*?\)", "", column_type) in FITS.get(value_kind, ())


def problems(conn: psycopg.Connection, table: projection.Table) -> list[str]:
    """What the table lacks for its projections and the worker role, one line each."""
    found = {
        name: (kind, not_null, has_default, collation)
        for name, kind, not_null, has_default, collation in conn.execute(
            _COLUMNS, {"table": table.name}
        )
    }
    unique = [set(columns) for (columns,) in conn.execute(_UNIQUE, {"table": table.name})]
    lines = [] if {table.key} in unique else [f"no primary key or unique index on {table.key}"]
    for column, kind in {**BOOKKEEPING, **VERSIONING}.items():
        if column not in found:
            lines.append(f"no {column} column")
        elif found[column][0] != kind:
            lines.append(f"{column} is {found[column][0]}, not {kind}")
    for column in (*VERSIONING, *DEFAULTED):
        if column in found and not (found[column][1] and found[column][2]):
            lines.append(f"{column} needs NOT NULL and a default")
    if "version" in found and found["version"][3] != "C":
        lines.append('version needs COLLATE "C" (versions compare bytewise)')
    for column, kinds in WRITTEN[table.name].items():
        if column not in found:
            lines.append(f"no {column} column (the projection writes it)")
            continue
        lines += [
            f"{column} is {found[column][0]}, which takes no {value_kind}"
            for value_kind in kinds - {"NoneType"}
            if column not in BOOKKEEPING and not fits(value_kind, found[column][0])
        ]
    for column in {*WRITTEN[table.name], *VERSIONING, "updated_at"} & found.keys():
        for privilege in ("SELECT", "INSERT", "UPDATE"):
            params = {"role": ROLE, "table": table.name, "column": column, "privilege": privilege}
            if not conn.execute(_PRIVILEGE, params).fetchone()[0]:
                lines.append(f"{ROLE} may not {privilege} {column}")
    return lines


def test_every_table_a_projection_writes_is_declared():
    """Each table some projection writes is in handlers.TABLES (the batch looks its key up
    there), each declared table is written by some event type, and the upsert's bookkeeping
    is what this file checks."""
    assert set(WRITTEN) == set(handlers.TABLES)
    assert set(upserts.BOOKKEEPING) <= set(BOOKKEEPING) and upserts.VERSION in VERSIONING


@pytest.mark.parametrize("name", sorted(handlers.TABLES))
def test_table_has_what_its_projections_write(database_url, name):
    """In a migrated database, after deploy/worker-role.sql: the table has its key as a
    primary key or unique index, the bookkeeping and version columns of a newest-wins table,
    a column of a fitting type for every column any projection writes to it, and the worker
    role may select, insert and update each."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(ROLE_SQL.read_text())
        assert problems(conn, handlers.TABLES[name]) == []


def test_worker_role_writes_every_event_type_twice(settings):
    """As zenoti_worker, a body of every event type with every field present is processed,
    then again with a later event time: every table gets rows, and the second round updates
    them (insert and update paths, with the real column types)."""
    with psycopg.connect(settings.database_url, autocommit=True) as owner:
        owner.execute(ROLE_SQL.read_text())
    role_url = make_conninfo(settings.database_url, options=f"-crole={ROLE}")
    role_settings = dataclasses.replace(settings, database_url=role_url)
    with db.create_pool(role_settings) as pool:
        for at in (FIRST, LATER):
            deliveries = [
                delivery(samples.envelope(event_type, body, str(uuid.uuid4()), at.isoformat()))
                for event_type, body in BODIES.items()
            ]
            statuses = write(pool, *deliveries)
            dead = fetch(
                settings.database_url,
                "SELECT event_type, failure_class, error FROM webhook_events WHERE status = 'dead'",
            )
            assert set(statuses.values()) == {"processed"}, dead
    for name in handlers.TABLES:
        query = f"SELECT min(last_event_at), count(*) FROM {name}"
        [(oldest, count)] = fetch(settings.database_url, query)
        assert count > 0 and oldest == LATER, name
