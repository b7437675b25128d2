-- One row per distinct Zenoti event (redeliveries collapse onto it), whatever its type: the
-- event log every current-state table can be rebuilt from, and where events nobody has a
-- table for yet wait to be projected.
CREATE TABLE events (
    delivery_id      text PRIMARY KEY,        -- envelope id, or sha256 of path hint and body
    event_id         text,
    event_type       text NOT NULL,
    resource         text,                    -- Invoice, Guest, Class, ... (from the type)
    entity_id        text,                    -- the id of what the event is about
    center_id        uuid,
    event_timestamp  timestamptz,
    ingest_id        uuid NOT NULL REFERENCES webhook_events (ingest_id),
    received_at      timestamptz NOT NULL,
    data             jsonb NOT NULL           -- the parsed `data` object, nothing dropped
);

CREATE INDEX events_type_time ON events (event_type, event_timestamp);
CREATE INDEX events_entity ON events (entity_id);
CREATE INDEX events_center_time ON events (center_id, event_timestamp);
