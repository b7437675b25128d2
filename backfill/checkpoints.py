"""Runs and their calls in Postgres (migration 0011): what a killed run resumes from.

A call is marked done in one transaction with what it found (the next page, the invoices to
read) and the run's counts, right after its records are in the stream. A run killed between
the two makes that one call again on resume; its records then arrive as duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from backfill import plan
from zenoti_ingest import errors, sql


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as `backfill status` shows it."""

    run_id: int
    source: str
    status: str
    since: date
    until: date
    horizon_days: int
    resources: list[str]
    centers: int | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    records_found: int
    records_new: int
    error: str | None
    calls_done: int
    calls_planned: int


def lock(conn: psycopg.Connection, source: str) -> None:
    """Hold the source's backfill lock for as long as `conn` lives; BackfillRunning if another
    session holds it."""
    if not conn.execute(sql.queries["backfill_try_lock"], {"source": source}).fetchone()[0]:
        name = f"source {source!r}" if source else "the default source"
        raise errors.BackfillRunning(
            f"a backfill of {name} is already running (see `zenoti-ingest backfill status`);"
            " this one stops without a call"
        )


def open_run(conn: psycopg.Connection, request: plan.Request) -> tuple[int, list[str] | None]:
    """(run id, its centers if known) of the unfinished run of these arguments, else of a new
    one. Runs of the source left `running` are marked interrupted (we hold the lock)."""
    key = request.key()
    with conn.transaction():
        found = conn.execute(
            sql.queries["backfill_find_run"], {"source": request.source, "plan_key": key}
        ).fetchone()
        if found:
            run_id, centers = found
            conn.execute(sql.queries["backfill_resume_run"], {"run_id": run_id})
        else:
            centers = list(request.centers) or None
            run_id = conn.execute(
                sql.queries["backfill_create_run"],
                {
                    "source": request.source,
                    "plan_key": key,
                    "since": request.since,
                    "until": request.until,
                    "horizon_days": request.horizon_days,
                    "resources": list(request.resources),
                    "centers": centers,
                },
            ).fetchone()[0]
        conn.execute(
            sql.queries["backfill_interrupt_others"], {"source": request.source, "run_id": run_id}
        )
    return run_id, centers


def set_centers(conn: psycopg.Connection, run_id: int, centers: Sequence[str]) -> None:
    conn.execute(sql.queries["backfill_set_centers"], {"run_id": run_id, "centers": list(centers)})


def add_calls(conn: psycopg.Connection, run_id: int, calls: Sequence[plan.Call]) -> None:
    """Plan calls (those already planned stay as they are)."""
    if calls:
        conn.execute(
            sql.queries["backfill_plan_calls"],
            {
                "run_id": run_id,
                "call_key": [c.key for c in calls],
                "resource": [c.resource for c in calls],
                "params": [json.dumps(c.params) for c in calls],
            },
        )


def next_calls(
    conn: psycopg.Connection, run_id: int, skipped: Sequence[str], limit: int = 50
) -> list[plan.Call]:
    """The next calls not yet done, in plan order, of resources not `skipped`."""
    cursor = conn.execute(
        sql.queries["backfill_next_calls"],
        {"run_id": run_id, "skipped": list(skipped), "limit": limit},
    )
    return [plan.Call(key, resource, params) for key, resource, params in cursor]


def done(
    conn: psycopg.Connection,
    run_id: int,
    call: plan.Call,
    found: int,
    new: int,
    more: Sequence[plan.Call],
) -> None:
    """One transaction: the call done, what it found planned, the run's counts."""
    with conn.transaction():
        conn.execute(
            sql.queries["backfill_mark_done"],
            {"run_id": run_id, "call_key": call.key, "records": found},
        )
        add_calls(conn, run_id, more)
        conn.execute(
            sql.queries["backfill_count_records"], {"run_id": run_id, "found": found, "new": new}
        )


def progress(conn: psycopg.Connection, run_id: int) -> dict[str, tuple[int, int]]:
    """{resource: (calls done, calls planned)}."""
    cursor = conn.execute(sql.queries["backfill_progress"], {"run_id": run_id})
    return {resource: (made, planned) for resource, made, planned in cursor}


def finish(conn: psycopg.Connection, run_id: int, status: str, error: str | None) -> None:
    conn.execute(
        sql.queries["backfill_finish_run"], {"run_id": run_id, "status": status, "error": error}
    )


def processed(conn: psycopg.Connection, delivery_ids: Sequence[str]) -> set[str]:
    """Those delivery ids the archive already holds as processed."""
    if not delivery_ids:
        return set()
    cursor = conn.execute(
        sql.queries["backfill_processed_ids"], {"delivery_ids": list(delivery_ids)}
    )
    return {delivery_id for (delivery_id,) in cursor}


def closed_invoices(conn: psycopg.Connection, invoice_ids: Sequence[str]) -> set[str]:
    """Those invoices the `invoices` table holds as closed."""
    if not invoice_ids:
        return set()
    cursor = conn.execute(
        sql.queries["backfill_closed_invoices"], {"invoice_ids": list(invoice_ids)}
    )
    return {invoice_id for (invoice_id,) in cursor}


def runs(conn: psycopg.Connection, source: str | None, limit: int = 20) -> list[RunRow]:
    cursor = conn.execute(sql.queries["backfill_runs"], {"source": source, "limit": limit})
    return [RunRow(*row) for row in cursor]


def jsonable(run: RunRow) -> dict[str, Any]:
    """A run as JSON values (dates and times in ISO 8601)."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(run).items()}
