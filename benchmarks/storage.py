"""Storage figures: bytes per delivery, hot-row bloat, expiry by drop vs DELETE, migration time.

    python benchmarks/storage.py                     # everything (about 10 minutes)
    python benchmarks/storage.py --only bytes        # one part (repeatable)

bytes   N deliveries of the drain benchmark's mix (benchmarks/payloads.py) through the worker's
        batch code; per table (heap with TOAST, and indexes): bytes per delivery and growth
        per million. Runs against whatever schema the checkout's migrations make (copy the
        script into an older checkout's benchmarks/ to measure that one).
bloat   1,000,000 events on 10,000 appointments upserted the way the worker does (500 events
        on 500 appointments per statement); the appointments table and its indexes against a
        freshly built copy, and the share of HOT updates.
expire  A month of 1,000,000 archived deliveries: dropping its weekly partitions (storage.prune)
        against a DELETE of the same rows (and the VACUUM that DELETE needs to reuse the space).
migrate A 1,000,000-row archive (and its event log) under the schema before partitioning
        migrated by the same SQL `zenoti-ingest migrate` applies, its NOTICEs as progress.
Databases are zi_bench_storage_*, created and dropped (benchmarks/stores.py).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import payloads
import psycopg
import stores

from worker.pipeline import batch, handlers, store
from zenoti_ingest import contract, db, logs, migrate, sql
from zenoti_ingest.settings import Settings

BATCH = 500
TABLES = ("webhook_events", "events", "delivery_ids", "appointments")
# Sizes of a table and its partitions (a plain table is its own one-leaf tree).
SIZES = """
SELECT sum(pg_table_size(t))::bigint, sum(pg_indexes_size(t))::bigint
FROM (SELECT %(t)s::regclass UNION SELECT relid FROM pg_partition_tree(%(t)s::regclass)) AS p(t)
"""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def timed(label: str, work: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    work(*args)
    seconds = time.perf_counter() - started
    say(f"  {label}: {seconds:.2f} s")
    return seconds


def sizes(conn: psycopg.Connection, table: str) -> tuple[int, int] | None:
    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
        return None
    return conn.execute(SIZES, {"t": table}).fetchone()


def mb(n: float) -> str:
    return f"{n / 1_048_576:,.1f} MB"


def bytes_per_delivery(total: int) -> list[str]:
    data = payloads.drain_set(total)
    with stores.database("zi_bench_storage_bytes") as url:
        settings = Settings(database_url=url)
        with db.create_pool(settings) as pool:
            items = data.items
            started = time.perf_counter()
            for start in range(0, len(items), BATCH):
                chunk = items[start : start + BATCH]
                batch.write(pool, [batch.prepare(i.delivery, 1) for i in chunk])
                if start % 20_000 == 0:
                    say(f"  {start:,}/{len(items):,} written")
            rate = len(items) / (time.perf_counter() - started)
        lines = [
            f"{total:,} deliveries (the drain mix: 10% redeliveries, 10% hot appointments), "
            f"written in-process at {rate:,.0f}/s",
            "| table | heap + TOAST | indexes | bytes per delivery | per 1M deliveries |",
            "|---|---|---|---|---|",
        ]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            grand = 0
            for table in TABLES:
                found = sizes(conn, table)
                if found is None:
                    lines.append(f"| {table} | (none) | | | |")
                    continue
                heap, indexes = found
                grand += heap + indexes
                per = (heap + indexes) / total
                lines.append(
                    f"| {table} | {mb(heap)} | {mb(indexes)} | {per:,.0f} | {mb(per * 1_000_000)} |"
                )
            per = grand / total
            lines.append(f"| all four | | | {per:,.0f} | {mb(per * 1_000_000)} |")
    return lines


def bloat(events: int, appointments: int, fillfactor: int | None) -> list[str]:
    """Upserts as the worker makes them: each statement carries 500 appointments, newest
    event each; every appointment gets events/appointments events, Started and Completed in
    turn, each newer than the last. `fillfactor` overrides the schema's, to compare."""
    with stores.database("zi_bench_storage_bloat") as url:
        table = handlers.TABLES["appointments"]
        ids = [f"00000000-0000-4000-a000-{n:012d}" for n in range(appointments)]
        templates = {}
        for event_type in (payloads.STARTED, payloads.COMPLETED):
            data = payloads.with_appointment(payloads.sample_data(), ids[0], event_type)
            body = payloads.envelope(event_type, data, "template", payloads._EPOCH)
            prepared = batch.prepare(contract.Delivery.accept(body, ""), 1)
            [templates[event_type]] = prepared.projected.rows["appointments"]
        epoch = payloads._EPOCH
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            if fillfactor is not None:
                conn.execute(f"ALTER TABLE appointments SET (fillfactor = {int(fillfactor)})")
            for n in range(0, events, BATCH):
                rows = []
                for k in range(n, min(n + BATCH, events)):
                    rnd = k // appointments
                    event_type = (payloads.STARTED, payloads.COMPLETED)[rnd % 2]
                    row = copy.copy(templates[event_type])
                    row["appointment_id"] = ids[k % appointments]
                    row["last_event_at"] = epoch + timedelta(seconds=rnd)
                    row["last_received_at"] = epoch + timedelta(seconds=rnd, microseconds=k)
                    row["last_ingest_id"] = f"00000000-0000-7000-8000-{k:012d}"
                    row["version"] = table.version(row)
                    rows.append(row)
                rows.sort(key=lambda r: r["appointment_id"])
                with conn.transaction():
                    store.upsert(conn, table, rows)
                if n % 100_000 == 0:
                    say(f"  {n:,}/{events:,} events upserted")
            seconds = time.perf_counter() - started
            time.sleep(1.0)  # statistics reach pg_stat_user_tables within a second
            upd, hot, dead = conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables"
                " WHERE relname = 'appointments'"
            ).fetchone()
            heap, indexes = sizes(conn, "appointments")
            fillfactor = conn.execute(
                "SELECT coalesce((SELECT option_value FROM pg_options_to_table(reloptions)"
                " WHERE option_name = 'fillfactor'), '100') FROM pg_class"
                " WHERE oid = 'appointments'::regclass"
            ).fetchone()[0]
            fresh = {}
            for name, ff in (("fresh", fillfactor), ("packed", "100")):
                conn.execute(
                    f"CREATE TABLE appointments_{name} (LIKE appointments INCLUDING ALL)"
                    f" WITH (fillfactor = {int(ff)})"
                )
                conn.execute(f"INSERT INTO appointments_{name} SELECT * FROM appointments")
                fresh[name] = sizes(conn, f"appointments_{name}")
    fresh_heap, fresh_indexes = fresh["fresh"]
    ratio = (heap + indexes) / (fresh_heap + fresh_indexes)
    packed = (heap + indexes) / sum(fresh["packed"])
    return [
        f"{events:,} events on {appointments:,} appointments, {BATCH} per upsert, in "
        f"{seconds:.0f} s; appointments fillfactor {fillfactor}",
        f"- HOT updates: {hot:,} of {upd:,} ({100 * hot / max(upd, 1):.1f}%); dead tuples left "
        f"{dead:,}",
        f"- after the workload: heap {mb(heap)}, indexes {mb(indexes)}",
        f"- freshly built copy (same fillfactor): heap {mb(fresh_heap)}, indexes "
        f"{mb(fresh_indexes)}",
        f"- size ratio (heap + indexes): **{ratio:.2f}x** the fresh copy; {packed:.2f}x a copy "
        "packed full (fillfactor 100)",
    ]


# A month of archived deliveries, `rows` of them evenly spread, bodies the drain's size.
FILL_MONTH = """
INSERT INTO webhook_events (ingest_id, received_at, delivery_id, event_type, status, body,
                            processed_at)
SELECT gen_random_uuid(), %(start)s + (%(span)s * i / %(rows)s), md5(i::text),
       'Appointment.Started', CASE WHEN i %% 10 = 0 THEN 'duplicate' ELSE 'processed' END,
       overlay(%(body)s::bytea PLACING convert_to(md5(i::text), 'UTF8') FROM 8),
       %(start)s + (%(span)s * i / %(rows)s)
FROM generate_series(1, %(rows)s) AS i
"""


def expire(rows: int) -> list[str]:
    from zenoti_ingest import storage  # this part measures the partitioned schema only

    month_start = storage.week_start(datetime.now(UTC) - timedelta(days=200))
    span = timedelta(weeks=4)
    body = payloads.started_body()
    results = {}
    for way in ("delete", "drop"):
        with stores.database(f"zi_bench_storage_{way}") as url:
            settings = Settings(database_url=url, archive_days=90)
            with psycopg.connect(url, autocommit=True) as conn:
                for week in range(5):
                    storage.ensure_partitions(conn, month_start + week * storage.WEEK)
                storage.ensure_partitions(conn, datetime.now(UTC))
                params = {"start": month_start, "span": span, "rows": rows, "body": body}
                say(f"  {way}: filling a month with {rows:,} deliveries")
                timed("fill", conn.execute, FILL_MONTH, params)
                conn.execute("VACUUM ANALYZE webhook_events")
                before = sum(sizes(conn, "webhook_events"))
                if way == "delete":
                    end = month_start + span + timedelta(days=1)
                    delete = "DELETE FROM webhook_events WHERE received_at < %s"
                    results["DELETE"] = timed("DELETE", conn.execute, delete, (end,))
                    results["VACUUM after the DELETE"] = timed(
                        "VACUUM", conn.execute, "VACUUM webhook_events"
                    )
                else:
                    results["partition drop (prune)"] = timed(
                        "prune", storage.prune, conn, settings, datetime.now(UTC), say
                    )
                after = sum(sizes(conn, "webhook_events"))
                results[f"{way}: on disk before / after"] = f"{mb(before)} / {mb(after)}"
    return [
        f"- {k}: {v:.2f} s" if isinstance(v, float) else f"- {k}: {v}" for k, v in results.items()
    ]


# An archive under the schema before 0010: `rows` deliveries over 8 weeks, 1 in 10 a
# duplicate, 1 in 1,000 dead; an event per processed one.
FILL_OLD_ARCHIVE = """
INSERT INTO webhook_events (ingest_id, received_at, delivery_id, event_type, status, body,
                            processed_at, failure_class)
SELECT gen_random_uuid(), now() - interval '8 weeks' * i / %(rows)s,
       CASE WHEN i %% 10 = 0 THEN md5((i - 1)::text) ELSE md5(i::text) END,
       'Appointment.Started',
       CASE WHEN i %% 1000 = 5 THEN 'dead' WHEN i %% 10 = 0 THEN 'duplicate' ELSE 'processed' END,
       overlay(%(body)s::bytea PLACING convert_to(md5(i::text), 'UTF8') FROM 8),
       now() - interval '8 weeks' * i / %(rows)s,
       CASE WHEN i %% 1000 = 5 THEN 'parse' END
FROM generate_series(1, %(rows)s) AS i
"""
FILL_OLD_EVENTS = """
INSERT INTO events (delivery_id, event_id, event_type, resource, entity_id, ingest_id,
                    received_at, event_timestamp, data)
SELECT delivery_id, delivery_id, event_type, 'Appointment', delivery_id, ingest_id,
       received_at, received_at, %(data)s::jsonb
FROM webhook_events WHERE status = 'processed'
"""


def migration(rows: int) -> list[str]:
    from tests.fixtures import old_schema  # (imported here: bytes and bloat run on old trees)

    name = "zi_bench_storage_migrate"
    url = stores.database_url(name)
    stores._drop(name)
    try:
        old_schema.migrate_up_to(url, "0009")
        with psycopg.connect(url, autocommit=True) as conn:
            say(f"  filling the pre-0010 archive with {rows:,} deliveries")
            body = payloads.started_body()
            timed("archive", conn.execute, FILL_OLD_ARCHIVE, {"rows": rows, "body": body})
            data = body.decode().split('"data": ', 1)[1][:-1]
            timed("event log", conn.execute, FILL_OLD_EVENTS, {"data": data})
            conn.execute("VACUUM ANALYZE")
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM events)"
            ).fetchone()
        say("  migrating (the SQL `zenoti-ingest migrate` runs, with its NOTICEs):")
        with psycopg.connect(url) as conn:
            conn.add_notice_handler(lambda notice: say(f"    {notice.message_primary}"))
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(sql.queries["lock_migrations"])
                applied = {v for (v,) in conn.execute(sql.queries["applied_migrations"])}
                for version, statements in migrate.pending(applied):
                    conn.execute(statements)
                    conn.execute(sql.queries["record_migration"], {"version": version})
                    say(f"    {version} applied ({time.perf_counter() - started:.1f} s)")
            seconds = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            after = conn.execute(
                "SELECT (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM events)"
            ).fetchone()
    finally:
        stores._drop(name)
    return [
        f"- {counts[0]:,} archived deliveries and {counts[1]:,} events migrated in "
        f"**{seconds:.1f} s**; rows after: {after[0]:,} and {after[1]:,}"
    ]


PARTS = {
    "bytes": lambda a: bytes_per_delivery(a.deliveries),
    "bloat": lambda a: bloat(a.events, a.appointments, a.fillfactor),
    "expire": lambda a: expire(a.rows),
    "migrate": lambda a: migration(a.rows),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(PARTS))
    parser.add_argument("--deliveries", type=int, default=100_000, help="for bytes")
    parser.add_argument("--events", type=int, default=1_000_000, help="for bloat")
    parser.add_argument("--appointments", type=int, default=10_000, help="for bloat")
    parser.add_argument("--fillfactor", type=int, help="for bloat: instead of the schema's")
    parser.add_argument("--rows", type=int, default=1_000_000, help="for expire and migrate")
    args = parser.parse_args()
    logs.configure(Settings(log_level="WARNING"))  # not a line per delivery
    for part in args.only or list(PARTS):
        say(f"{part}:")
        lines = PARTS[part](args)
        print(f"## {part}\n")
        print("\n".join(lines) + "\n", flush=True)


if __name__ == "__main__":
    main()
