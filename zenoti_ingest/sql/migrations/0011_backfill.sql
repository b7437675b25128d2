-- Backfill from Zenoti's REST API (backfill/): each run and each call it plans, so that a run
-- killed at any point (SIGKILL included) resumes without repeating a call that succeeded.
-- Ids, dates and counts only: no API key, no personal data (records go through the stream).

-- One `zenoti-ingest backfill` of one source. `plan_key` digests its arguments: a run started
-- again with the same arguments picks up the unfinished run of that key.
CREATE TABLE backfill_runs (
    run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL,
    plan_key      text NOT NULL,
    since         date NOT NULL,
    until         date NOT NULL,
    horizon_days  integer NOT NULL,
    resources     text[] NOT NULL,
    centers       text[],            -- as asked; NULL: every center, listed by the first call
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'done', 'incomplete', 'interrupted')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    records_found bigint NOT NULL DEFAULT 0,
    records_new   bigint NOT NULL DEFAULT 0,  -- not archived as processed when read
    error         text                        -- why a resource stopped (endpoint, field)
);
CREATE INDEX backfill_runs_source ON backfill_runs (source, plan_key, run_id);

-- Every call of a run: planned ahead (lists per center and window), or found by an earlier
-- call (the next page, an invoice's details). Done once its records are in the stream.
CREATE TABLE backfill_calls (
    run_id     bigint NOT NULL REFERENCES backfill_runs ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,  -- the order calls are made in
    call_key   text NOT NULL,     -- resource/center/window/page or resource/id: unique per run
    resource   text NOT NULL,     -- appointments, invoices, centers
    params     jsonb NOT NULL,    -- what the call sends: center, dates, page, invoice id
    done_at    timestamptz,
    records    integer,
    PRIMARY KEY (run_id, call_key)
);
CREATE INDEX backfill_calls_pending ON backfill_calls (run_id, seq) WHERE done_at IS NULL;
