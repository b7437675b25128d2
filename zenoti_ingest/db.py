"""Connection pool, transactions, and psycopg errors translated into ours (in this one place)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from zenoti_ingest import errors
from zenoti_ingest.settings import Settings

# Errors worth retrying as they are: the server went away, or concurrency lost a race.
_TRANSIENT = (
    psycopg.OperationalError,  # connection refused or lost, server shutting down, ...
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.LockNotAvailable,
    pg_errors.AdminShutdown,
    psycopg_pool.PoolTimeout,
)
# The values of some delivery were refused: retrying the same values cannot help. (An index
# row too large is an OperationalError subclass, so this is checked first; text psycopg can't
# encode, a lone UTF-16 surrogate, fails before it reaches the server.)
_DATA = (
    psycopg.DataError,
    psycopg.IntegrityError,
    pg_errors.ProgramLimitExceeded,
    UnicodeEncodeError,
)


def create_pool(settings: Settings, *, min_size: int = 1) -> psycopg_pool.ConnectionPool:
    """A pool that tolerates Postgres being down at start: connections are made on demand."""
    return psycopg_pool.ConnectionPool(
        settings.database_url,
        min_size=min_size,
        max_size=max(min_size, settings.db_pool_size),
        timeout=10.0,
        open=True,
        # A connection broken by a restart or pg_terminate_backend is found before use.
        check=psycopg_pool.ConnectionPool.check_connection,
        kwargs={"connect_timeout": 5, "application_name": "zenoti-ingest"},
    )


@contextlib.contextmanager
def transaction(pool: psycopg_pool.ConnectionPool) -> Iterator[psycopg.Connection]:
    """One transaction on a pooled connection; psycopg errors come out as ours."""
    try:
        with pool.connection() as conn, conn.transaction():
            yield conn
    except _DATA as exc:
        # The message can quote a value; keep only the class and the SQLSTATE.
        raise errors.DataRejected(
            f"postgres refused a value ({type(exc).__name__}, SQLSTATE "
            f"{getattr(exc, 'sqlstate', None) or 'none: not encodable as UTF-8'})"
        ) from exc
    except _TRANSIENT as exc:
        raise errors.TransientError(f"postgres: {type(exc).__name__}") from exc


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A single connection, for the CLI and migrations; unreachable → TransientError."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise errors.TransientError(f"postgres unreachable at {redact(url)}") from exc


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in info.items())
