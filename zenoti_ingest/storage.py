"""Bounded storage: weekly partitions of the archive and the event log, created ahead of need
and expired after their retention; the deduplication ledger forgotten after its own.

Both tables are partitioned by week of receipt (Monday 00:00 UTC): with 90 days' retention
that is about 14 partitions per table, few enough that a lookup by ingest id or delivery id
(which cannot name the week) probes every partition's index cheaply, and coarse enough that a
year of event log kept forever is 52 tables, not 365. A DEFAULT partition takes any row whose
week has no partition yet, so an insert never fails; `ensure_partitions` moves such rows into
the week's partition when it creates it, and keeps the dead letters of expired weeks.

Every function takes the same advisory lock, so several workers (and a person running
`zenoti-ingest prune`) may call them at once: one does the work, the others wait for it
(`ensure_partitions`) or skip it (`prune(..., wait=False)`, the workers' automatic run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql as pgsql

from zenoti_ingest import errors, logs, sql
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

ARCHIVE, EVENT_LOG, LEDGER = "webhook_events", "events", "delivery_ids"
WEEK = timedelta(days=7)
WEEKS_AHEAD = 2  # this week's partition, the next two, and last week's (a clock a bit behind)
LEDGER_SLICE = 10_000  # delivery ids forgotten per transaction


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of a partitioned table; lower/upper None for MINVALUE/MAXVALUE."""

    name: str
    is_default: bool
    lower: datetime | None
    upper: datetime | None
    bytes: int
    estimated_rows: int


@dataclass(frozen=True, slots=True)
class Expiry:
    """One piece of prune's work: a week's partition dropped (`kept` of its rows moved to the
    DEFAULT partition first), or `rows` deleted from a table (`bytes` then estimated)."""

    table: str
    name: str  # the partition, or the table rows are deleted from
    kind: str  # "partition" or "rows"
    rows: int
    kept: int
    bytes: int
    upper: datetime | None = None  # a partition's end


Progress = Callable[[str], None]


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the week `moment` is in."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def partitions(conn: psycopg.Connection, parent: str) -> list[Partition]:
    return [
        Partition(*row)
        for row in conn.execute(sql.queries["storage_partitions"], {"parent": parent})
    ]


def ensure_partitions(conn: psycopg.Connection, now: datetime) -> list[str]:
    """Create the weekly partitions from last week to WEEKS_AHEAD weeks on, in both tables,
    moving rows the DEFAULT partition took for those weeks; the names of those created.
    Callers at once wait for each other; each then finds the partitions there."""
    created = []
    weeks = [week_start(now) + k * WEEK for k in range(-1, WEEKS_AHEAD + 1)]
    if not any(_missing(conn, weeks).values()):
        return []  # the usual case: no need to wait behind another maintainer's prune
    try:
        with conn.transaction():
            conn.execute(sql.queries["storage_wait_lock"])
            missing = _missing(conn, weeks)  # again, under the lock
            needed = [parent for parent, lowers in missing.items() if lowers]
            if needed:
                # A worker that planned its insert before the partition existed would route a
                # row of that week to DEFAULT and fail its constraint: inserts wait instead.
                conn.execute(sql.queries["storage_lock_timeout"])
                tables = pgsql.SQL(", ").join(pgsql.Identifier(t) for t in needed)
                conn.execute(_composed("storage_lock_tables", {"tables": tables}))
            for parent in needed:
                created += [_create(conn, parent, w, w + WEEK) for w in missing[parent]]
    except pg_errors.LockNotAvailable as exc:
        raise errors.TransientError("partitions: the tables stayed busy (lock_timeout)") from exc
    for name in created:
        log.info("storage_partition_created", partition=name)
    return created


def _missing(conn: psycopg.Connection, weeks: list[datetime]) -> dict[str, list[datetime]]:
    """{table: the weeks (their Mondays) no partition of it covers}."""
    return {
        parent: [w for w in weeks if not any(_overlaps(p, w, w + WEEK) for p in existing)]
        for parent, existing in ((t, partitions(conn, t)) for t in (ARCHIVE, EVENT_LOG))
    }


def _overlaps(p: Partition, lower: datetime, upper: datetime) -> bool:
    return (
        not p.is_default
        and (p.lower is None or p.lower < upper)
        and (p.upper is None or p.upper > lower)
    )


def _create(conn: psycopg.Connection, parent: str, lower: datetime, upper: datetime) -> str:
    name = f"{parent}_p{lower:%Y%m%d}"
    names = {
        "parent": pgsql.Identifier(parent),
        "partition": pgsql.Identifier(name),
        "default": pgsql.Identifier(f"{parent}_default"),
        "columns": _columns(conn, parent),
    }
    bounds = {"lower": lower, "upper": upper}
    conn.execute(_composed("storage_create_partition", names))
    conn.execute(_composed("storage_move_from_default", names), bounds)
    literals = {k: pgsql.Literal(v.isoformat()) for k, v in bounds.items()}
    conn.execute(_composed("storage_attach_partition", {**names, **literals}))
    return name


def plan(conn: psycopg.Connection, settings: Settings, now: datetime) -> list[Expiry]:
    """What prune would remove now, with exact row counts (each expired partition is read
    once, for the rows it keeps)."""
    work: list[Expiry] = []
    archive_cutoff = now - timedelta(days=settings.archive_days)
    for p in _expired(conn, ARCHIVE, archive_cutoff, now):
        rows, kept = conn.execute(
            _composed("storage_archive_kept", {"partition": pgsql.Identifier(p.name)}),
            {"cutoff": archive_cutoff},
        ).fetchone()
        work.append(Expiry(ARCHIVE, p.name, "partition", rows - kept, kept, p.bytes, p.upper))
    work += _rows(
        conn, ARCHIVE, f"{ARCHIVE}_default", "storage_count_default_archive", archive_cutoff
    )
    if settings.event_log_days:
        events_cutoff = now - timedelta(days=settings.event_log_days)
        for p in _expired(conn, EVENT_LOG, events_cutoff, now):
            [rows] = conn.execute(
                _composed("storage_count_rows", {"partition": pgsql.Identifier(p.name)})
            ).fetchone()
            work.append(Expiry(EVENT_LOG, p.name, "partition", rows, 0, p.bytes, p.upper))
        work += _rows(
            conn, EVENT_LOG, f"{EVENT_LOG}_default", "storage_count_default_events", events_cutoff
        )
    ledger_cutoff = now - timedelta(days=ledger_days(settings))
    work += _rows(conn, LEDGER, LEDGER, "storage_count_expired_ids", ledger_cutoff)
    return work


def ledger_days(settings: Settings) -> int:
    """How long a delivery id is remembered: ZENOTI_INGEST_DEDUP_DAYS, but never less than
    its body is kept (while a processed body is archived, a second copy must stay a duplicate:
    one `events` row per event)."""
    return max(settings.dedup_days, settings.archive_days)


def _expired(
    conn: psycopg.Connection, parent: str, cutoff: datetime, now: datetime
) -> list[Partition]:
    """Partitions wholly older than the cutoff, but never one ensure_partitions keeps (from
    last week on): a retention under two weeks would otherwise drop it and make it again on
    every check."""
    before = min(cutoff, week_start(now) - WEEK)
    return [
        p
        for p in partitions(conn, parent)
        if not p.is_default and p.upper is not None and p.upper <= before
    ]


def _rows(
    conn: psycopg.Connection, table: str, name: str, count_query: str, cutoff: datetime
) -> list[Expiry]:
    """Rows of `name` a DELETE would expire; bytes estimated from the table's average row."""
    [rows] = conn.execute(
        _composed(count_query, {"default": pgsql.Identifier(name)}), {"cutoff": cutoff}
    ).fetchone()
    if not rows:
        return []
    size, estimated = conn.execute(sql.queries["storage_table_size"], {"table": name}).fetchone()
    return [Expiry(table, name, "rows", rows, 0, size * rows // max(estimated, rows), cutoff)]


def prune(
    conn: psycopg.Connection,
    settings: Settings,
    now: datetime,
    progress: Progress = lambda message: None,
    *,
    wait: bool = True,
) -> list[Expiry]:
    """Expire what the retention settings say has expired; what was removed. Each partition
    goes in a transaction of its own (detach, keep its dead letters, drop). With wait=False,
    return at once, having done nothing, while another maintainer holds the lock."""
    with conn.transaction():
        if not _locked(conn, wait):
            return []
        work = plan(conn, settings, now)
    archive_cutoff = now - timedelta(days=settings.archive_days)
    done: list[Expiry] = []
    for n, item in enumerate(work, 1):
        progress(f"[{n}/{len(work)}] {_describe(item)}")
        if item.table == LEDGER:
            _forget_ids(conn, item.upper, wait, progress)
        else:
            try:
                with conn.transaction():
                    if not _locked(conn, wait):
                        return done
                    if item.kind == "rows":
                        _expire_default(conn, item)
                    elif _exists(conn, item):
                        _drop(conn, item, archive_cutoff)
                    else:  # another prune (a worker's) took it between our transactions
                        continue
            except pg_errors.LockNotAvailable as exc:
                raise errors.TransientError(
                    f"prune: {item.table} stayed busy (lock_timeout); the rest waits for the "
                    "next run"
                ) from exc
        done.append(item)
        log.info(
            "storage_expired", table=item.table, name=item.name, rows=item.rows, kept=item.kept
        )
    return done


def _exists(conn: psycopg.Connection, item: Expiry) -> bool:
    return any(p.name == item.name for p in partitions(conn, item.table))


def _locked(conn: psycopg.Connection, wait: bool) -> bool:
    """Take the maintainers' lock for the transaction: wait for it, or say it is taken."""
    if wait:
        conn.execute(sql.queries["storage_wait_lock"])
        return True
    [locked] = conn.execute(sql.queries["storage_lock"]).fetchone()
    return locked


def _drop(conn: psycopg.Connection, item: Expiry, archive_cutoff: datetime) -> None:
    names = {
        "parent": pgsql.Identifier(item.table),
        "partition": pgsql.Identifier(item.name),
        "columns": _columns(conn, item.table),
    }
    conn.execute(sql.queries["storage_lock_timeout"])
    conn.execute(_composed("storage_detach_partition", names))
    if item.table == ARCHIVE:
        conn.execute(_composed("storage_keep_archive_rows", names), {"cutoff": archive_cutoff})
    conn.execute(_composed("storage_drop_partition", names))


def _expire_default(conn: psycopg.Connection, item: Expiry) -> None:
    query = "storage_expire_default_" + ("archive" if item.table == ARCHIVE else "events")
    conn.execute(_composed(query, {"default": pgsql.Identifier(item.name)}), {"cutoff": item.upper})


def _forget_ids(conn: psycopg.Connection, cutoff: datetime, wait: bool, progress: Progress) -> None:
    """Delete expired ledger rows a slice per transaction: a long first run never holds
    locks or a snapshot for long, and each slice's dead tuples are vacuumable at once."""
    done = 0
    while True:
        with conn.transaction():
            if not _locked(conn, wait):
                return
            deleted = conn.execute(
                sql.queries["storage_expire_ids"], {"cutoff": cutoff, "limit": LEDGER_SLICE}
            ).rowcount
        done += deleted
        if deleted < LEDGER_SLICE:
            return
        progress(f"  {done:,} delivery ids forgotten")


def _describe(item: Expiry) -> str:
    if item.kind == "partition":
        kept = f", keeping {item.kept:,} dead or recently settled" if item.kept else ""
        return f"drop partition {item.name}: {item.rows:,} rows, {size_text(item.bytes)}{kept}"
    older = f"{item.upper:%Y-%m-%d %H:%M} UTC"
    return (
        f"delete from {item.name}: {item.rows:,} rows older than {older}, ~{size_text(item.bytes)}"
    )


def size_text(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def maintain(conn: psycopg.Connection, settings: Settings, now: datetime) -> list[Expiry]:
    """The running system's upkeep: partitions ahead, then expiry unless another worker is at
    it (autocommit connection)."""
    ensure_partitions(conn, now)
    return prune(conn, settings, now, wait=False)


def _columns(conn: psycopg.Connection, parent: str) -> pgsql.Composable:
    """The table's columns by name (a column added later is carried along)."""
    rows = conn.execute(sql.queries["storage_columns"], {"parent": parent})
    return pgsql.SQL(", ").join(pgsql.Identifier(name) for (name,) in rows)


def _composed(name: str, identifiers: dict[str, pgsql.Composable]) -> pgsql.Composed:
    return pgsql.SQL(sql.queries[name]).format(**identifiers)
