-- Newest wins per column, not per row: an event that carries only some columns (a status
-- change) must not hide the columns an older event alone carries when that older event
-- arrives late. Every current-state table gets:
--   version         the newest event's version (event time, rank, receipt, ingest id; fixed-
--                   width hex, compared bytewise)
--   newest_columns  the columns (attnums) that newest event wrote
--   stragglers      {attnum: version} of columns last written by an older event
-- Rows written before this migration count as older than any event (version '').
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.table_name FROM information_schema.columns c
             WHERE c.table_schema = 'public' AND c.column_name = 'last_ingest_id'
    LOOP
        EXECUTE format(
            'ALTER TABLE %I ADD COLUMN version text COLLATE "C" NOT NULL DEFAULT '''', '
            'ADD COLUMN newest_columns smallint[] NOT NULL DEFAULT ''{}'', '
            'ADD COLUMN stragglers jsonb NOT NULL DEFAULT ''{}''', t);
    END LOOP;
END $$;
