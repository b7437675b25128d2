-- Every accepted delivery, with the exact bytes received: the archive and the dead-letter store.
CREATE TABLE webhook_events (
    ingest_id      uuid PRIMARY KEY,            -- stamped by the ingress (UUIDv7: time-ordered)
    received_at    timestamptz NOT NULL,
    delivery_id    text NOT NULL,               -- envelope id, or sha256 of path hint and body
    event_type     text,                        -- NULL when it could not be told
    path_hint      text NOT NULL DEFAULT '',    -- the event type the URL named, if any
    event_timestamp timestamptz,                -- envelope event_timestamp, if any
    status         text NOT NULL CHECK (status IN ('pending', 'processed', 'duplicate', 'dead')),
    failure_class  text,                        -- for dead rows: parse, schema, ...
    error          text,                        -- for dead rows: what to fix; never personal data
    attempts       integer NOT NULL DEFAULT 1,  -- stream deliveries it took
    body           bytea NOT NULL,
    processed_at   timestamptz
);

-- At most one processed delivery per Zenoti delivery id: later copies are duplicates.
CREATE UNIQUE INDEX webhook_events_processed_delivery
    ON webhook_events (delivery_id) WHERE status = 'processed';
CREATE INDEX webhook_events_dead ON webhook_events (received_at) WHERE status = 'dead';
CREATE INDEX webhook_events_type_received ON webhook_events (event_type, received_at);

-- Current state of each appointment: the newest event by (event_timestamp, progress, receipt).
CREATE TABLE appointments (
    appointment_id           uuid PRIMARY KEY,
    appointment_group_id     uuid,
    invoice_id               uuid,
    invoice_number           text,
    invoice_item_id          uuid,
    center_id                uuid,
    service_id               uuid,
    service_name             text,
    start_time               timestamp,          -- centre-local, as Zenoti sends it
    end_time                 timestamp,
    service_duration_minutes integer,
    has_add_ons              boolean,
    is_add_on                boolean,
    therapist_id             uuid,
    therapist_name           text,
    is_recurring             boolean,
    appointment_type         integer,
    therapist_request_type   integer,
    room_id                  uuid,
    room_name                text,
    equipment_id             uuid,
    equipment_name           text,
    progress                 integer,
    status                   text NOT NULL,
    last_event_type          text NOT NULL,
    last_event_at            timestamptz,        -- envelope event_timestamp; NULL for bare bodies
    last_received_at         timestamptz NOT NULL,
    last_ingest_id           uuid NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX appointments_center_start ON appointments (center_id, start_time);
CREATE INDEX appointments_group ON appointments (appointment_group_id);
