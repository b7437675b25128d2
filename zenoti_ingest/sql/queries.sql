-- Batch statements take one array per column, bound in binary (%(name)b): the text format
-- escapes every element of every array, which costs more than the rest of the batch.

-- insert_deliveries --
-- Archive a batch of deliveries. A row whose ingest_id is already archived (the stream gave us
-- an entry again after a crash) is skipped; so is a 'processed' row whose delivery_id the
-- deduplication ledger (delivery_ids) already holds for another delivery (a redelivery, even
-- of a delivery whose body has expired): the caller archives those again as 'duplicate'.
-- Within a batch the first received copy of a delivery id claims it (ties: the first in the
-- batch, which is the stream's order). A ledger row that is the delivery's own (an entry
-- handed out again) counts as claimed: its archive key decides.
-- Sorted by delivery id so that concurrent batches take index locks in one order.
WITH claimed AS (
    -- Only the columns the ledger needs: the bodies are not copied into a CTE.
    INSERT INTO delivery_ids AS l (delivery_id, ingest_id, received_at)
    SELECT DISTINCT ON (delivery_id) delivery_id, ingest_id, received_at
    FROM unnest(%(delivery_id)b::text[], %(ingest_id)b::uuid[],
                %(received_at)b::timestamptz[], %(status)b::text[]) WITH ORDINALITY
         AS c(delivery_id, ingest_id, received_at, status, position)
    WHERE status = 'processed'
    ORDER BY delivery_id, received_at, position
    ON CONFLICT (delivery_id) DO UPDATE SET ingest_id = EXCLUDED.ingest_id
    WHERE l.ingest_id = EXCLUDED.ingest_id
    RETURNING ingest_id
)
INSERT INTO webhook_events (ingest_id, received_at, source, delivery_id, event_type, path_hint,
                            event_timestamp, status, failure_class, error, attempts, body,
                            processed_at, first_failed_at, last_failed_at)
SELECT ingest_id, received_at, source, delivery_id, event_type, path_hint, event_timestamp,
       status, failure_class, error, attempts, body, now(),
       CASE WHEN status = 'dead' THEN coalesce(first_failed_at, now()) END,
       CASE WHEN status = 'dead' THEN now() END
FROM unnest(%(ingest_id)b::uuid[], %(received_at)b::timestamptz[], %(source)b::text[],
            %(delivery_id)b::text[], %(event_type)b::text[], %(path_hint)b::text[],
            %(event_timestamp)b::timestamptz[], %(status)b::text[], %(failure_class)b::text[],
            %(error)b::text[], %(attempts)b::integer[], %(body)b::bytea[],
            %(first_failed_at)b::timestamptz[])
     AS d(ingest_id, received_at, source, delivery_id, event_type, path_hint, event_timestamp,
          status, failure_class, error, attempts, body, first_failed_at)
WHERE status <> 'processed' OR ingest_id IN (SELECT ingest_id FROM claimed)
ORDER BY delivery_id, received_at
ON CONFLICT DO NOTHING
RETURNING ingest_id;

-- release_claims --
-- Deliveries handed out again that were archived before, not as processed (a dead letter whose
-- ack was lost): insert_deliveries' ledger claim for them is undone, or later copies of the
-- delivery id would count as duplicates of one never applied. A processed one keeps its claim.
DELETE FROM delivery_ids AS l
USING unnest(%(delivery_id)b::text[], %(ingest_id)b::uuid[]) AS s(delivery_id, ingest_id)
WHERE l.delivery_id = s.delivery_id AND l.ingest_id = s.ingest_id
  AND NOT EXISTS (SELECT FROM webhook_events w
                  WHERE w.ingest_id = l.ingest_id AND w.received_at = l.received_at
                    AND w.status = 'processed');

-- reopen_dead --
-- A replayed dead letter is archived afresh by the batch that replays it; its history
-- (attempts, first failure) carries over. A row no longer dead (replayed twice) stays put.
DELETE FROM webhook_events
WHERE ingest_id = ANY(%(ingest_ids)b::uuid[]) AND status = 'dead'
RETURNING ingest_id, attempts, first_failed_at;

-- insert_events --
-- One row per distinct event. A delivery's own row is refreshed when it is reprocessed (the
-- mapping of entity and center may have changed); another delivery of the same event id is
-- a duplicate and never gets here.
INSERT INTO events (delivery_id, event_id, event_type, resource, entity_id, center_id,
                    event_timestamp, ingest_id, received_at, data)
SELECT delivery_id, event_id, event_type, resource, entity_id, center_id, event_timestamp,
       ingest_id, received_at, data::jsonb
FROM unnest(%(delivery_id)b::text[], %(event_id)b::text[], %(event_type)b::text[],
            %(resource)b::text[], %(entity_id)b::text[], %(center_id)b::uuid[],
            %(event_timestamp)b::timestamptz[], %(ingest_id)b::uuid[],
            %(received_at)b::timestamptz[], %(data)b::text[])
     AS e(delivery_id, event_id, event_type, resource, entity_id, center_id, event_timestamp,
          ingest_id, received_at, data)
ORDER BY delivery_id
ON CONFLICT (delivery_id, received_at) DO UPDATE
SET resource = EXCLUDED.resource, entity_id = EXCLUDED.entity_id,
    center_id = EXCLUDED.center_id, data = EXCLUDED.data
WHERE events.ingest_id = EXCLUDED.ingest_id;

-- applied_migrations --
SELECT version FROM schema_migrations ORDER BY version;

-- record_migration --
INSERT INTO schema_migrations (version) VALUES (%(version)s);

-- create_migrations_table --
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- lock_migrations --
-- One migrator at a time: several processes may start at once (web, worker, release).
SELECT pg_advisory_xact_lock(7254017810341);

-- database_exists --
SELECT 1 FROM pg_database WHERE datname = %(name)s;

-- delivery_filters --
-- The dlq / reprocess filters, put in the queries below where they say so (a NULL filter
-- matches everything; `until` is exclusive).
AND (%(ingest_ids)s::uuid[] IS NULL OR ingest_id = ANY(%(ingest_ids)s::uuid[]))
AND (%(failure_classes)s::text[] IS NULL OR failure_class = ANY(%(failure_classes)s::text[]))
AND (%(event_types)s::text[] IS NULL OR event_type = ANY(%(event_types)s::text[]))
AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s::timestamptz)
AND (%(reason_contains)s::text IS NULL
     OR strpos(lower(error), lower(%(reason_contains)s::text)) > 0)
AND (%(source)s::text IS NULL OR source = %(source)s::text)

-- list_dead --
-- Dead letters matching the dlq filters (a NULL filter matches everything), oldest first;
-- never the body. `until` is exclusive. A NULL limit is no limit.
SELECT ingest_id, received_at, source, event_type, failure_class, attempts, first_failed_at,
       last_failed_at, error
FROM dead_letters
WHERE TRUE
  {filters}
ORDER BY received_at, ingest_id
LIMIT %(limit)s;

-- summarize_dead --
-- How many dead letters per failure class and event type, with the same filters as list_dead.
SELECT failure_class, event_type, count(*)
FROM dead_letters
WHERE TRUE
  {filters}
GROUP BY failure_class, event_type
ORDER BY failure_class, event_type;

-- select_archived --
-- The ingest ids of deliveries in one status (dead: to replay; processed: to reprocess or
-- rebuild from) matching the filters, in order of receipt.
SELECT ingest_id
FROM webhook_events
WHERE status = %(status)s
  {filters}
ORDER BY received_at, ingest_id;

-- count_archived --
SELECT count(*) FROM webhook_events WHERE status = %(status)s;

-- load_archived --
-- What the ingress accepted, to send through the stream again; only rows still in `status`
-- (one replayed or discarded meanwhile is left out).
SELECT ingest_id, (extract(epoch FROM received_at) * 1000000)::bigint, path_hint, body, source
FROM webhook_events
WHERE ingest_id = ANY(%(ingest_ids)s::uuid[]) AND status = %(status)s;

-- show_delivery --
-- One delivery's whole record, body included (dlq show: personal data, on request only).
SELECT ingest_id, status, received_at, source, delivery_id, event_type, path_hint,
       event_timestamp, failure_class, error, attempts, first_failed_at, last_failed_at,
       processed_at, discard_reason, body
FROM webhook_events
WHERE ingest_id = %(ingest_id)s::uuid;

-- delivery_statuses --
SELECT ingest_id, status FROM webhook_events WHERE ingest_id = ANY(%(ingest_ids)s::uuid[]);

-- discard_dead --
-- An operator gave up on these dead letters: kept, with the reason, never deleted.
UPDATE webhook_events SET status = 'discarded', discard_reason = %(reason)s, discarded_at = now()
WHERE ingest_id = ANY(%(ingest_ids)s::uuid[]) AND status = 'dead'
RETURNING ingest_id;

-- rebuild_table_schema --
-- The schema of a live current-state table (before a temporary table of the name hides it).
SELECT n.nspname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %(table)s::regclass;

-- rebuild_scratch_table --
-- An empty copy of a live table (columns, defaults, key) that disappears with the transaction;
-- being temporary, it hides the live table from the worker's unqualified statements.
CREATE TEMPORARY TABLE {scratch} (LIKE {live} INCLUDING ALL) ON COMMIT DROP;

-- rebuild_is_scratch --
SELECT relpersistence = 't' FROM pg_class WHERE oid = %(table)s::regclass;

-- rebuild_row_counts --
SELECT (SELECT count(*) FROM {scratch}), (SELECT count(*) FROM {live});

-- rebuild_keys_only_in --
-- Keys of table a that table b lacks: their count (on every row) and the first few.
SELECT count(*) OVER (), a.{key}::text
FROM {a} a
WHERE NOT EXISTS (SELECT FROM {b} b WHERE b.{key} = a.{key})
ORDER BY a.{key}
LIMIT greatest(%(limit)s, 1);

-- rebuild_different --
-- Keys in both tables whose compared columns differ: their count, the first few, and which
-- columns differ.
SELECT count(*) OVER (), s.{key}::text, array_remove(ARRAY[{checks}]::text[], NULL)
FROM {scratch} s JOIN {live} l ON l.{key} = s.{key}
WHERE ({scratch_columns}) IS DISTINCT FROM ({live_columns})
ORDER BY s.{key}
LIMIT greatest(%(limit)s, 1);

-- rebuild_pruned_before --
-- Whether deliveries older than the archive's oldest were seen (their event, or their
-- delivery id in the ledger): their archive rows expired (ZENOTI_INGEST_ARCHIVE_DAYS).
SELECT EXISTS (SELECT FROM events WHERE received_at < %(since)s)
    OR EXISTS (SELECT FROM delivery_ids WHERE received_at < %(since)s);

-- rebuild_columns --
SELECT attname FROM pg_attribute
WHERE attrelid = %(table)s::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;

-- count_dead_by_class --
-- Dead letters now, per failure class (the exporter's zenoti_ingest_dead_letters gauge): one
-- pass over the partial index of dead rows, whatever the size of the archive.
SELECT coalesce(failure_class, 'unknown'), count(*)
FROM webhook_events
WHERE status = 'dead'
GROUP BY 1
ORDER BY 1;

-- ---------------------------------------------------------------------------------------------
-- stats and find (cli/stats.py, cli/find.py): what an operator reads; nothing here writes.
-- (stats counts dead letters by class with count_dead_by_class, as the exporter does.)
-- ---------------------------------------------------------------------------------------------

-- stats_newest_failures --
-- The newest dead letters: class and reason (reasons never quote values), never bodies.
SELECT ingest_id, coalesce(last_failed_at, received_at) AS failed_at, source, event_type,
       failure_class, error
FROM dead_letters
ORDER BY failed_at DESC, ingest_id DESC
LIMIT %(limit)s;

-- find_key_types --
-- The type of each current-state table's key (uuid or text): an id is looked up only where
-- it can be a key, so that every lookup uses the primary key.
SELECT t.name, a.atttypid::regtype::text
FROM unnest(%(tables)s::text[], %(keys)s::text[]) AS t(name, key)
JOIN pg_attribute a ON a.attrelid = t.name::regclass AND a.attname = t.key;

-- find_current_row --
-- A current-state row by its key, as JSON (its columns in table order).
SELECT row_to_json(t)
FROM {table} t
WHERE t.{key} = %(key)s;

-- find_matches --
-- The delivery ids of what concerns an id: the delivery with that ingest id, deliveries with
-- that envelope id, the events about the entities (by the events_entity index), events about
-- a container of the entity (an appointment's group or invoice) whose data name it, and the
-- deliveries that last wrote its rows.
SELECT delivery_id FROM webhook_events WHERE ingest_id = %(ingest_id)s::uuid
UNION
SELECT delivery_id FROM webhook_events WHERE ingest_id = ANY(%(writers)s::uuid[])
UNION
SELECT %(id)s::text
UNION
SELECT delivery_id FROM events WHERE entity_id = ANY(%(entity_ids)s::text[])
UNION
SELECT delivery_id FROM events
WHERE entity_id = ANY(%(containers)s::text[]) AND strpos(data::text, %(mentioned)s::text) > 0;

-- find_by_event_id --
-- The delivery ids whose event has this event_id (events_event_id, an index per partition;
-- it runs only when the id matched nothing else).
SELECT delivery_id FROM events WHERE event_id = %(id)s;

-- find_pruned --
-- What remains of deliveries whose archive rows expired (ZENOTI_INGEST_ARCHIVE_DAYS): their
-- event in the event log, and their record in the deduplication ledger (either may be gone
-- too, after ZENOTI_INGEST_EVENT_LOG_DAYS and ZENOTI_INGEST_DEDUP_DAYS).
SELECT d.delivery_id, l.ingest_id::text, l.received_at, e.ingest_id::text, e.received_at
FROM unnest(%(delivery_ids)s::text[]) AS d(delivery_id)
LEFT JOIN delivery_ids l ON l.delivery_id = d.delivery_id
LEFT JOIN LATERAL (SELECT ingest_id, received_at FROM events
                   WHERE events.delivery_id = d.delivery_id
                   ORDER BY received_at LIMIT 1) e ON TRUE
WHERE l.delivery_id IS NOT NULL OR e.ingest_id IS NOT NULL
ORDER BY coalesce(l.received_at, e.received_at);

-- find_deliveries --
-- Every delivery of these delivery ids (the processed one, its duplicates, dead copies),
-- oldest first, with its event and, for a duplicate, the delivery it repeats; never bodies.
-- webhook_events_delivery (an index per partition) finds them.
SELECT w.ingest_id::text, w.received_at, w.source, w.event_type, w.delivery_id, e.event_id,
       e.entity_id, w.status, w.processed_at, original.ingest_id::text AS duplicate_of,
       w.failure_class, w.error AS reason, w.attempts, w.last_failed_at, w.discard_reason
FROM webhook_events w
LEFT JOIN events e ON e.delivery_id = w.delivery_id
LEFT JOIN webhook_events original
       ON w.status = 'duplicate' AND original.status = 'processed'
      AND original.delivery_id = w.delivery_id
WHERE w.delivery_id = ANY(%(delivery_ids)s::text[])
ORDER BY w.received_at, w.ingest_id;

-- ---------------------------------------------------------------------------------------------
-- storage (zenoti_ingest/storage.py): weekly partitions of webhook_events and events, created
-- ahead and expired; the deduplication ledger's expiry. {parent}, {partition}, {columns} and
-- {default} are identifiers filled in by storage.py ({lower} and {upper}: literals, as DDL
-- takes no parameters).
-- ---------------------------------------------------------------------------------------------

-- storage_lock --
-- One maintainer at a time, for the transaction; false when another holds it (the worker's
-- automatic run then leaves the work to that one).
SELECT pg_try_advisory_xact_lock(7254017810342);

-- storage_wait_lock --
SELECT pg_advisory_xact_lock(7254017810342);

-- storage_partitions --
-- The partitions of a table with their bounds (NULL: MINVALUE or MAXVALUE), the DEFAULT one
-- flagged, with their size and estimated rows.
SELECT c.relname, c.relispartition AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz,
       pg_total_relation_size(c.oid), greatest(c.reltuples, 0)::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %(parent)s::regclass
ORDER BY 3 NULLS FIRST;

-- storage_columns --
SELECT attname FROM pg_attribute
WHERE attrelid = %(parent)s::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;

-- storage_lock_tables --
-- While partitions are attached, no insert runs: one that planned before could route a row to
-- DEFAULT whose week is being attached (a partition-constraint error). Inserts wait briefly.
LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE;

-- storage_create_partition --
CREATE TABLE {partition} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);

-- storage_move_from_default --
-- Rows that went to the DEFAULT partition for want of their week's partition move into it.
WITH moved AS (
    DELETE FROM {default}
    WHERE received_at >= %(lower)s AND received_at < %(upper)s
    RETURNING {columns}
)
INSERT INTO {partition} ({columns}) SELECT {columns} FROM moved;

-- storage_attach_partition --
ALTER TABLE {parent} ATTACH PARTITION {partition} FOR VALUES FROM ({lower}) TO ({upper});

-- storage_lock_timeout --
-- Attaching and detaching take the table's strongest lock: wait a little for running batches
-- (which queue behind the waiting lock), not forever.
SET LOCAL lock_timeout = '5s';

-- storage_detach_partition --
ALTER TABLE {parent} DETACH PARTITION {partition};

-- storage_drop_partition --
DROP TABLE {partition};

-- storage_archive_kept --
-- What an expired week of the archive keeps: dead letters (until replayed or discarded), and
-- rows replayed or discarded within the retention (their clock starts then).
SELECT count(*), count(*) FILTER (WHERE status IN ('dead', 'pending')
                                  OR greatest(processed_at, discarded_at) >= %(cutoff)s)
FROM {partition};

-- storage_keep_archive_rows --
-- Before a week of the archive is dropped, what it keeps goes back into the archive: with its
-- week detached, into the DEFAULT partition, where dead letters stay until replayed.
INSERT INTO {parent} ({columns})
SELECT {columns} FROM {partition}
WHERE status IN ('dead', 'pending') OR greatest(processed_at, discarded_at) >= %(cutoff)s;

-- storage_count_default_archive --
SELECT count(*) FROM {default}
WHERE received_at < %(cutoff)s AND status NOT IN ('dead', 'pending')
  AND NOT coalesce(greatest(processed_at, discarded_at) >= %(cutoff)s, false);

-- storage_expire_default_archive --
DELETE FROM {default}
WHERE received_at < %(cutoff)s AND status NOT IN ('dead', 'pending')
  AND NOT coalesce(greatest(processed_at, discarded_at) >= %(cutoff)s, false);

-- storage_count_rows --
SELECT count(*) FROM {partition};

-- storage_count_default_events --
SELECT count(*) FROM {default} WHERE received_at < %(cutoff)s;

-- storage_expire_default_events --
DELETE FROM {default} WHERE received_at < %(cutoff)s;

-- storage_count_expired_ids --
SELECT count(*) FROM delivery_ids WHERE received_at < %(cutoff)s;

-- storage_expire_ids --
-- The deduplication ledger forgets old delivery ids, a slice per transaction.
-- (By ctid: the BRIN index hands out expired rows in physical order, no sort.)
DELETE FROM delivery_ids
WHERE ctid = ANY(ARRAY(SELECT ctid FROM delivery_ids WHERE received_at < %(cutoff)s
                       LIMIT %(limit)s));

-- storage_table_size --
SELECT pg_total_relation_size(%(table)s::regclass), greatest(reltuples, 0)::bigint
FROM pg_class WHERE oid = %(table)s::regclass;

-- ===================================================================================
-- backfill: runs and calls of `zenoti-ingest backfill` (backfill/checkpoints.py)
-- ===================================================================================

-- backfill_try_lock --
-- One backfill per source at a time: a session lock, let go when the session ends (a killed
-- run's connection closes with it).
SELECT pg_try_advisory_lock(hashtext('zenoti_ingest.backfill'), hashtext(%(source)s));

-- backfill_find_run --
-- The unfinished run of these arguments, to resume.
SELECT run_id, centers FROM backfill_runs
WHERE source = %(source)s AND plan_key = %(plan_key)s AND status <> 'done'
ORDER BY run_id DESC LIMIT 1;

-- backfill_create_run --
INSERT INTO backfill_runs (source, plan_key, since, until, horizon_days, resources, centers)
VALUES (%(source)s, %(plan_key)s, %(since)s, %(until)s, %(horizon_days)s, %(resources)s,
        %(centers)s)
RETURNING run_id;

-- backfill_resume_run --
UPDATE backfill_runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = now()
WHERE run_id = %(run_id)s;

-- backfill_interrupt_others --
-- Runs of the source still marked running while we hold its lock were killed.
UPDATE backfill_runs SET status = 'interrupted', updated_at = now()
WHERE source = %(source)s AND status = 'running' AND run_id <> %(run_id)s;

-- backfill_set_centers --
UPDATE backfill_runs SET centers = %(centers)s, updated_at = now() WHERE run_id = %(run_id)s;

-- backfill_plan_calls --
-- Calls in the order given; one already planned (resumed run, an invoice in two reports) stays.
INSERT INTO backfill_calls (run_id, call_key, resource, params)
SELECT %(run_id)s, k, r, p::jsonb
FROM unnest(%(call_key)s::text[], %(resource)s::text[], %(params)s::text[]) WITH ORDINALITY
     AS c(k, r, p, n)
ORDER BY n
ON CONFLICT DO NOTHING;

-- backfill_next_calls --
SELECT call_key, resource, params FROM backfill_calls
WHERE run_id = %(run_id)s AND done_at IS NULL AND resource <> ALL(%(skipped)s::text[])
ORDER BY seq LIMIT %(limit)s;

-- backfill_mark_done --
UPDATE backfill_calls SET done_at = now(), records = %(records)s
WHERE run_id = %(run_id)s AND call_key = %(call_key)s;

-- backfill_count_records --
UPDATE backfill_runs
SET records_found = records_found + %(found)s, records_new = records_new + %(new)s,
    updated_at = now()
WHERE run_id = %(run_id)s;

-- backfill_progress --
-- Per resource: calls done, calls planned so far.
SELECT resource, count(*) FILTER (WHERE done_at IS NOT NULL), count(*)
FROM backfill_calls WHERE run_id = %(run_id)s GROUP BY resource ORDER BY resource;

-- backfill_finish_run --
UPDATE backfill_runs
SET status = %(status)s, error = %(error)s, updated_at = now(),
    finished_at = CASE WHEN %(status)s = 'done' THEN now() END
WHERE run_id = %(run_id)s;

-- backfill_processed_ids --
-- Of these delivery ids, those the archive holds as processed: a record read again unchanged.
SELECT DISTINCT delivery_id FROM webhook_events
WHERE delivery_id = ANY(%(delivery_ids)s::text[]) AND status = 'processed';

-- backfill_closed_invoices --
-- Of these invoices, those stored closed already (Invoice.Closed arrived): not read again.
SELECT invoice_id::text FROM invoices
WHERE invoice_id = ANY(%(invoice_ids)s::uuid[]) AND is_closed;

-- backfill_runs --
SELECT r.run_id, r.source, r.status, r.since, r.until, r.horizon_days, r.resources,
       cardinality(r.centers), r.started_at, r.updated_at, r.finished_at, r.records_found,
       r.records_new, r.error,
       (SELECT count(*) FROM backfill_calls c WHERE c.run_id = r.run_id AND c.done_at IS NOT NULL),
       (SELECT count(*) FROM backfill_calls c WHERE c.run_id = r.run_id)
FROM backfill_runs r
WHERE %(source)s::text IS NULL OR r.source = %(source)s
ORDER BY r.run_id DESC LIMIT %(limit)s;
