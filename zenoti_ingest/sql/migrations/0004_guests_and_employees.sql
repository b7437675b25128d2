-- Personal data: a guest's or employee's first and last name are columns, because reports
-- name people (a therapist's revenue, a guest's visits) and a join to events.data for every
-- row would make each such report a jsonb query. Emails, phones, dates of birth, addresses
-- (street, city, zip), user names, employee pay and every other field stay only in
-- events.data (joined by last_ingest_id = events.ingest_id, or entity_id = the id as text):
-- nobody filters on them, and a column would be one more copy to find when a person's data
-- must be erased. Country and state ids are kept as coarse geography, not an address.

-- Current state of each guest: the newest Guest.* event by (event_timestamp, receipt).
CREATE TABLE guests (
    guest_id                       uuid PRIMARY KEY,
    guest_number                   text,         -- Zenoti's integer "_id", as text
    code                           text,         -- the guest code shown in Zenoti
    center_id                      uuid,         -- the guest's home center
    center_name                    text,
    -- As sent, never shifted; no offset is sent. In the samples it is one second before the
    -- UTC event_timestamp for a Chicago centre, so it may well be UTC rather than centre-local.
    created_date                   timestamp,
    first_name                     text,
    last_name                      text,
    gender                         integer,      -- Zenoti's code (0 in the samples)
    is_minor                       boolean,
    nationality_id                 integer,
    country_id                     integer,      -- address_info.country_id
    state_id                       integer,      -- address_info.state_id; -1 as sent for none
    -- Communication consent (preferences): the flags and Zenoti's opt-in status codes.
    receive_transactional_email    boolean,
    receive_transactional_sms      boolean,
    receive_transactional_whatsapp boolean,
    receive_marketing_email        boolean,
    receive_marketing_sms          boolean,
    receive_lp_statement           boolean,      -- sic "recieve_lp_stmt": loyalty statements
    opt_in_for_loyalty_program     boolean,
    transactional_email_optin      integer,
    transactional_sms_optin        integer,
    transactional_whatsapp_optin   integer,
    marketing_email_optin          integer,
    marketing_sms_optin            integer,
    -- Set by Guest.Deleted (its event time), cleared by Created and Updated; Guest.Merged
    -- (no sample) updates the other columns and leaves it alone.
    deleted_at                     timestamptz,
    last_event_type                text NOT NULL,
    last_event_at                  timestamptz,  -- envelope event_timestamp
    last_received_at               timestamptz NOT NULL,
    last_ingest_id                 uuid NOT NULL,
    updated_at                     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX guests_center_created ON guests (center_id, created_date);
CREATE INDEX guests_code ON guests (code);
CREATE INDEX guests_number ON guests (guest_number);

-- Current state of each employee: the newest Employee.* event by (event_timestamp, receipt).
CREATE TABLE employees (
    employee_id         uuid PRIMARY KEY,       -- what appointments.therapist_id joins to
    code                text,
    center_id           uuid,
    is_consultant       boolean,
    created_by          uuid,                   -- the employee (user) who created the record
    first_name          text,
    last_name           text,
    gender              integer,                -- Zenoti's code (-1 and 1 in the samples)
    job_id              uuid,
    job_name            text,                   -- e.g. THERAPIST, BEAUTICIAN
    designation_id      text,                   -- null in every sample: type unknown
    start_date          timestamp,              -- job_info, as sent (midnight in the samples)
    end_date            timestamp,
    include_in_payroll  integer,                -- Zenoti's code (1 in the samples)
    security_profile_id uuid,                   -- roles.security_profile_id
    show_in_catalog     boolean,
    deleted_at          timestamptz,            -- set by Employee.Deleted, cleared otherwise
    last_event_type     text NOT NULL,
    last_event_at       timestamptz,
    last_received_at    timestamptz NOT NULL,
    last_ingest_id      uuid NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX employees_center_job ON employees (center_id, job_id);
CREATE INDEX employees_job ON employees (job_id);
