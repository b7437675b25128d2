-- Bounded storage: the archive (webhook_events) and the event log (events) are partitioned by
-- week of receipt, so that expiring old data is dropping a partition, not a DELETE; the
-- deduplication of Zenoti's redeliveries moves to a small ledger (delivery_ids) that outlives
-- the bodies. Weekly partitions are created ahead of need by the running worker
-- (zenoti_ingest/storage.py), not here: a DEFAULT partition takes any row whose week has no
-- partition yet, so an insert never fails, and maintenance moves such rows out.
--
-- An existing installation keeps every row: its tables become one partition each covering
-- everything received before the end of this week (attached, not copied: Postgres scans them
-- once to check the bound and builds the new keys), expired as a whole once that week is past
-- the retention. Progress is reported as NOTICEs.

DROP VIEW dead_letters;
ALTER TABLE webhook_events RENAME TO webhook_events_legacy;
ALTER TABLE events RENAME TO events_legacy;
-- The event log and the archive expire separately: the event log's reference goes.
ALTER TABLE events_legacy DROP CONSTRAINT events_ingest_id_fkey;
ALTER TABLE events_legacy DROP CONSTRAINT events_pkey;
ALTER TABLE webhook_events_legacy DROP CONSTRAINT webhook_events_pkey;
-- A unique index on a partitioned table must include the partition key; "one processed row
-- per delivery id" is now delivery_ids' primary key.
DROP INDEX webhook_events_processed_delivery;
ALTER INDEX webhook_events_dead RENAME TO webhook_events_legacy_dead;
ALTER INDEX webhook_events_type_received RENAME TO webhook_events_legacy_type_received;
ALTER INDEX events_type_time RENAME TO events_legacy_type_time;
ALTER INDEX events_entity RENAME TO events_legacy_entity;
ALTER INDEX events_center_time RENAME TO events_legacy_center_time;
ALTER TABLE webhook_events_legacy ADD COLUMN discarded_at timestamptz;

-- Every accepted delivery, with the exact bytes received: the archive and the dead-letter
-- store. Rows of 'processed' and 'duplicate' deliveries expire with their week's partition
-- after ZENOTI_INGEST_ARCHIVE_DAYS; dead letters are kept until replayed or discarded.
CREATE TABLE webhook_events (
    ingest_id       uuid NOT NULL,               -- stamped by the ingress (UUIDv7: time-ordered)
    received_at     timestamptz NOT NULL,
    delivery_id     text NOT NULL,               -- envelope id, or sha256 of path hint and body
    event_type      text,                        -- NULL when it could not be told
    path_hint       text NOT NULL DEFAULT '',    -- the event type the URL named, if any
    event_timestamp timestamptz,                 -- envelope event_timestamp, if any
    status          text NOT NULL,
    failure_class   text,                        -- for dead rows: parse, schema, ...
    error           text,                        -- for dead rows: what to fix; never personal data
    attempts        integer NOT NULL DEFAULT 1,  -- stream deliveries it took
    body            bytea NOT NULL,
    processed_at    timestamptz,                 -- when archived (a replay: when replayed)
    source          text NOT NULL DEFAULT '',
    first_failed_at timestamptz,
    last_failed_at  timestamptz,
    discard_reason  text,
    discarded_at    timestamptz,                 -- when an operator discarded it (retention)
    CONSTRAINT webhook_events_status_check
        CHECK (status IN ('pending', 'processed', 'duplicate', 'dead', 'discarded')),
    PRIMARY KEY (ingest_id, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX webhook_events_dead ON webhook_events (received_at) WHERE status = 'dead';
CREATE INDEX webhook_events_type_received ON webhook_events (event_type, received_at);
-- Every delivery of a delivery id (find): an index per partition.
CREATE INDEX webhook_events_delivery ON webhook_events (delivery_id);

-- One row per distinct Zenoti event (redeliveries collapse onto it): the event log every
-- current-state table can be rebuilt from. Kept forever unless ZENOTI_INGEST_EVENT_LOG_DAYS.
CREATE TABLE events (
    delivery_id     text NOT NULL,            -- envelope id, or sha256 of path hint and body
    event_id        text,
    event_type      text NOT NULL,
    resource        text,                     -- Invoice, Guest, Class, ... (from the type)
    entity_id       text,                     -- the id of what the event is about
    center_id       uuid,
    event_timestamp timestamptz,
    ingest_id       uuid NOT NULL,            -- webhook_events.ingest_id (no FK: expires apart)
    received_at     timestamptz NOT NULL,
    data            jsonb NOT NULL,           -- the parsed `data` object, nothing dropped
    PRIMARY KEY (delivery_id, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX events_type_time ON events (event_type, event_timestamp);
CREATE INDEX events_entity ON events (entity_id);
CREATE INDEX events_center_time ON events (center_id, event_timestamp);
CREATE INDEX events_event_id ON events (event_id);

-- The deduplication ledger: the first processed delivery of each Zenoti delivery id, written
-- by the statement that archives it. Unpartitioned, so that its key is unique across all
-- time; rows go after ZENOTI_INGEST_DEDUP_DAYS, whatever became of the bodies.
CREATE TABLE delivery_ids (
    delivery_id text PRIMARY KEY,
    ingest_id   uuid NOT NULL,                -- the processed delivery (webhook_events)
    received_at timestamptz NOT NULL
);
-- Rows arrive in about the order of receipt: a BRIN index finds the expired ones at almost no
-- cost per insert (a btree would be one more index write per delivery).
CREATE INDEX delivery_ids_received ON delivery_ids USING brin (received_at);

DO $$
DECLARE
    started timestamptz := clock_timestamp();
    rows_archived bigint := (SELECT count(*) FROM webhook_events_legacy);
    rows_logged bigint := (SELECT count(*) FROM events_legacy);
    newest timestamptz;
    bound timestamptz;
BEGIN
    IF rows_archived = 0 AND rows_logged = 0 THEN
        DROP TABLE events_legacy;
        DROP TABLE webhook_events_legacy;
        RETURN;
    END IF;
    newest := greatest(now(), (SELECT max(received_at) FROM webhook_events_legacy),
                       (SELECT max(received_at) FROM events_legacy));
    -- The Monday (UTC) after the newest row: the weekly partitions start there.
    bound := (date_trunc('week', newest AT TIME ZONE 'UTC') + interval '7 days') AT TIME ZONE 'UTC';
    RAISE NOTICE '0010: % archived deliveries and % events received before % become partitions',
        rows_archived, rows_logged, bound;
    INSERT INTO delivery_ids (delivery_id, ingest_id, received_at)
    SELECT delivery_id, ingest_id, received_at FROM webhook_events_legacy
    WHERE status = 'processed'
    ON CONFLICT DO NOTHING;
    RAISE NOTICE '0010: deduplication ledger filled (% s)',
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
    EXECUTE format('ALTER TABLE webhook_events ATTACH PARTITION webhook_events_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    RAISE NOTICE '0010: archive attached, keys built (% s)',
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION events_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    RAISE NOTICE '0010: event log attached, keys built (% s)',
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
END $$;

CREATE TABLE webhook_events_default PARTITION OF webhook_events DEFAULT;
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The dead-letter store is webhook_events itself; this view is a window on it, not a copy.
CREATE VIEW dead_letters AS
SELECT ingest_id, received_at, source, delivery_id, event_type, path_hint, failure_class, error,
       attempts, first_failed_at, last_failed_at, body
FROM webhook_events
WHERE status = 'dead';

-- Current-state tables take many updates to few rows (a hot appointment gets an event a
-- minute). An update is HOT (no new index entries; the old version pruned on the page
-- itself, no VACUUM needed) only if no indexed column changes and the page has room for the
-- new version: every current-state table leaves half of each page free (new pages; existing
-- ones as VACUUM FULL or pg_repack rewrite them), and no index covers a column every event
-- changes (last_event_at was in two; a centre's rows are few enough to sort). Measured
-- (benchmarks/storage.py --only bloat, 10 events per appointment): fillfactor 100: 0% HOT;
-- 70: 89% HOT, 1.9x a fresh table; 50: 100% HOT, 1.0x and smaller than 70's in bytes. They
-- hold a row per entity, not per delivery: half-empty pages cost little next to the archive.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.table_name FROM information_schema.columns c
             WHERE c.table_schema = 'public' AND c.column_name = 'last_ingest_id'
    LOOP
        EXECUTE format('ALTER TABLE %I SET (fillfactor = 50)', t);
    END LOOP;
END $$;
DROP INDEX appointment_groups_center;
CREATE INDEX appointment_groups_center ON appointment_groups (center_id);
DROP INDEX class_bookings_center_time;
CREATE INDEX class_bookings_center ON class_bookings (center_id);
