"""Create the database if missing, apply pending migrations under a lock.

sql/schema.sql, the schema all migrations together produce, is written and checked by
zenoti_ingest/schema_snapshot.py (`make schema`).
"""

from __future__ import annotations

from psycopg import errors as pg_errors
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from zenoti_ingest import db, logs, sql

log = logs.get_logger(__name__)


def pending(applied: set[str]) -> list[tuple[str, str]]:
    """(version, SQL) of every migration file not yet applied, in order."""
    files = sorted(sql.MIGRATIONS_DIR.glob("*.sql"))
    return [(f.stem, f.read_text()) for f in files if f.stem not in applied]


def ensure_database(database_url: str) -> bool:
    """CREATE DATABASE if it does not exist; True when it was created."""
    name = conninfo_to_dict(database_url).get("dbname") or "postgres"
    maintenance = make_conninfo(database_url, dbname="postgres")
    with db.connect(maintenance, autocommit=True) as conn:
        if conn.execute(sql.queries["database_exists"], {"name": name}).fetchone():
            return False
        try:
            conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
        # Another process created it in between: seen by the name check (DuplicateDatabase),
        # or, while its CREATE DATABASE was not yet committed, by pg_database's unique index.
        except (pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
            return False
    log.info("database_created", database=name)
    return True


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations in one transaction under an advisory lock; return their versions."""
    ensure_database(database_url)
    done: list[str] = []
    with db.connect(database_url) as conn, conn.transaction():
        conn.execute(sql.queries["lock_migrations"])
        conn.execute(sql.queries["create_migrations_table"])
        # A long migration reports its steps as NOTICEs (counts and seconds, no row data).
        conn.add_notice_handler(
            lambda notice: log.info("migration_notice", message=notice.message_primary)
        )
        applied = {row[0] for row in conn.execute(sql.queries["applied_migrations"])}
        for version, statements in pending(applied):
            conn.execute(statements)
            conn.execute(sql.queries["record_migration"], {"version": version})
            done.append(version)
            log.info("migration_applied", version=version)
    return done
