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
    """A single connection, for the CLI and migrations; failures say which kind they are."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise connect_failure(url, exc) from exc


# What a refused connection says, by libpq's and the server's own words (SQLSTATE is not
# always set on a failed connection).
_DATABASE_MISSING = ("does not exist",)  # FATAL: database "x" does not exist (3D000)
_REFUSED = (
    "password authentication failed",
    "role ",  # role "x" does not exist; role "x" is not permitted to log in
    "no pg_hba.conf entry",
    "permission denied",
    "authentication failed",
    "password supplied",
    "requires a password",
)


def connect_failure(url: str, exc: psycopg.OperationalError) -> errors.ZenotiIngestError:
    """A failed connection as the error a person can act on: the database is missing, the
    server refused our role, or nothing answered. Never the server's full text (it can name
    users or hosts we would rather keep out of logs)."""
    text = str(exc)
    where = redact(url)
    if any(phrase in text for phrase in _REFUSED):
        return errors.ServiceRefused(
            f"postgres at {where} refused the connection (role or password: check DATABASE_URL)"
        )
    if "database" in text and any(phrase in text for phrase in _DATABASE_MISSING):
        return errors.DatabaseMissing(
            f"the database at {where} does not exist: run `zenoti-ingest migrate` (it creates"
            " it) or check DATABASE_URL"
        )
    return errors.TransientError(f"postgres unreachable at {where}")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in info.items())
