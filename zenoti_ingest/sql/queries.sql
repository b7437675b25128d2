-- insert_deliveries --
-- Archive a batch of deliveries. A row whose ingest_id is already archived (the stream gave us
-- an entry again after a crash) is skipped; so is a 'processed' row whose delivery_id already
-- has a processed row (a redelivery): the caller archives those again as 'duplicate'.
-- Sorted by delivery id so that concurrent batches take index locks in one order.
INSERT INTO webhook_events (ingest_id, received_at, delivery_id, event_type, path_hint,
                            event_timestamp, status, failure_class, error, attempts, body,
                            processed_at)
SELECT ingest_id, received_at, delivery_id, event_type, path_hint, event_timestamp, status,
       failure_class, error, attempts, body, now()
FROM unnest(%(ingest_id)s::uuid[], %(received_at)s::timestamptz[], %(delivery_id)s::text[],
            %(event_type)s::text[], %(path_hint)s::text[], %(event_timestamp)s::timestamptz[],
            %(status)s::text[], %(failure_class)s::text[], %(error)s::text[],
            %(attempts)s::integer[], %(body)s::bytea[])
     AS d(ingest_id, received_at, delivery_id, event_type, path_hint, event_timestamp, status,
          failure_class, error, attempts, body)
ORDER BY delivery_id, received_at
ON CONFLICT DO NOTHING
RETURNING ingest_id;

-- upsert_appointments --
-- One row per appointment (the caller keeps the newest per id). An older event never
-- overwrites a newer state: the order is (event_timestamp, progress, receipt), and bare bodies
-- (no event_timestamp) sort before enveloped ones.
INSERT INTO appointments AS a (
    appointment_id, appointment_group_id, invoice_id, invoice_number, invoice_item_id, center_id,
    service_id, service_name, start_time, end_time, service_duration_minutes, has_add_ons,
    is_add_on, therapist_id, therapist_name, is_recurring, appointment_type,
    therapist_request_type, room_id, room_name, equipment_id, equipment_name, progress, status,
    last_event_type, last_event_at, last_received_at, last_ingest_id)
SELECT *
FROM unnest(%(appointment_id)s::uuid[], %(appointment_group_id)s::uuid[],
            %(invoice_id)s::uuid[], %(invoice_number)s::text[], %(invoice_item_id)s::uuid[],
            %(center_id)s::uuid[], %(service_id)s::uuid[], %(service_name)s::text[],
            %(start_time)s::timestamp[], %(end_time)s::timestamp[],
            %(service_duration_minutes)s::integer[], %(has_add_ons)s::boolean[],
            %(is_add_on)s::boolean[], %(therapist_id)s::uuid[], %(therapist_name)s::text[],
            %(is_recurring)s::boolean[], %(appointment_type)s::integer[],
            %(therapist_request_type)s::integer[], %(room_id)s::uuid[], %(room_name)s::text[],
            %(equipment_id)s::uuid[], %(equipment_name)s::text[], %(progress)s::integer[],
            %(status)s::text[], %(last_event_type)s::text[], %(last_event_at)s::timestamptz[],
            %(last_received_at)s::timestamptz[], %(last_ingest_id)s::uuid[]) AS n
ORDER BY 1
ON CONFLICT (appointment_id) DO UPDATE SET
    appointment_group_id = EXCLUDED.appointment_group_id,
    invoice_id = EXCLUDED.invoice_id,
    invoice_number = EXCLUDED.invoice_number,
    invoice_item_id = EXCLUDED.invoice_item_id,
    center_id = EXCLUDED.center_id,
    service_id = EXCLUDED.service_id,
    service_name = EXCLUDED.service_name,
    start_time = EXCLUDED.start_time,
    end_time = EXCLUDED.end_time,
    service_duration_minutes = EXCLUDED.service_duration_minutes,
    has_add_ons = EXCLUDED.has_add_ons,
    is_add_on = EXCLUDED.is_add_on,
    therapist_id = EXCLUDED.therapist_id,
    therapist_name = EXCLUDED.therapist_name,
    is_recurring = EXCLUDED.is_recurring,
    appointment_type = EXCLUDED.appointment_type,
    therapist_request_type = EXCLUDED.therapist_request_type,
    room_id = EXCLUDED.room_id,
    room_name = EXCLUDED.room_name,
    equipment_id = EXCLUDED.equipment_id,
    equipment_name = EXCLUDED.equipment_name,
    progress = EXCLUDED.progress,
    status = EXCLUDED.status,
    last_event_type = EXCLUDED.last_event_type,
    last_event_at = EXCLUDED.last_event_at,
    last_received_at = EXCLUDED.last_received_at,
    last_ingest_id = EXCLUDED.last_ingest_id,
    updated_at = now()
WHERE (coalesce(EXCLUDED.last_event_at, '-infinity'), coalesce(EXCLUDED.progress, -1),
       EXCLUDED.last_received_at, EXCLUDED.last_ingest_id)
    > (coalesce(a.last_event_at, '-infinity'), coalesce(a.progress, -1),
       a.last_received_at, a.last_ingest_id);

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
