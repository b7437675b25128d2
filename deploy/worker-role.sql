-- A least-privilege role for the workers (the ingress needs no database access at all).
-- Run once as the database owner after `zenoti-ingest migrate`, then give the workers a
-- DATABASE_URL with this role; keep the owner's URL for `zenoti-ingest migrate` (release).
--   psql "$OWNER_DATABASE_URL" -f deploy/worker-role.sql
--   ALTER ROLE zenoti_worker PASSWORD '...';
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zenoti_worker') THEN
        CREATE ROLE zenoti_worker LOGIN;
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO zenoti_worker;
-- Archive deliveries and log events (INSERT); re-archive a replayed dead letter (DELETE of
-- the dead row, webhook_events only); refresh an event's projection on reprocess (UPDATE).
GRANT SELECT, INSERT, DELETE ON webhook_events TO zenoti_worker;
GRANT SELECT, INSERT, UPDATE ON events TO zenoti_worker;
-- The dead-letter CLI marks rows discarded.
GRANT UPDATE (status, discard_reason) ON webhook_events TO zenoti_worker;
-- Current-state tables: newest-wins upserts.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT table_name FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
               AND table_name NOT IN ('webhook_events', 'events', 'schema_migrations')
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO zenoti_worker', t);
    END LOOP;
END $$;
GRANT SELECT ON dead_letters TO zenoti_worker;
