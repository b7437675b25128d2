-- Dead letters keep when they first and last failed; an operator may discard one (with a
-- reason) instead of deleting it.
ALTER TABLE webhook_events
    ADD COLUMN first_failed_at timestamptz,
    ADD COLUMN last_failed_at timestamptz,
    ADD COLUMN discard_reason text,
    DROP CONSTRAINT webhook_events_status_check,
    ADD CONSTRAINT webhook_events_status_check
        CHECK (status IN ('pending', 'processed', 'duplicate', 'dead', 'discarded'));

-- The dead-letter store is webhook_events itself; this view is a window on it, not a copy.
CREATE VIEW dead_letters AS
SELECT ingest_id, received_at, source, delivery_id, event_type, path_hint, failure_class, error,
       attempts, first_failed_at, last_failed_at, body
FROM webhook_events
WHERE status = 'dead';
