-- Batch statements take one array per column, bound in binary (%(name)b): the text format
-- escapes every element of every array, which costs more than the rest of the batch.

-- insert_deliveries --
-- Archive a batch of deliveries. A row whose ingest_id is already archived (the stream gave us
-- an entry again after a crash) is skipped; so is a 'processed' row whose delivery_id already
-- has a processed row (a redelivery): the caller archives those again as 'duplicate'.
-- Sorted by delivery id so that concurrent batches take index locks in one order.
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
ORDER BY delivery_id, received_at
ON CONFLICT DO NOTHING
RETURNING ingest_id;

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
ON CONFLICT (delivery_id) DO UPDATE
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
