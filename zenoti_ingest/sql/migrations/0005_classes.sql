-- Current state of class sessions (Class.Schedule.*) and class bookings (Class.Booking.*):
-- the newest event by (event_timestamp, receipt). Zenoti's class ids are integers, not GUIDs,
-- and come as numbers here and as strings elsewhere: they are text, so any spelling joins.
-- The rest of each object (descriptions, virtual links, recurrence rules, the virtual guests
-- of a booking with their names, emails and phones) is in events.data, by last_ingest_id.
-- No personal data here: a guest's name is in guests, joined on guest_id.

CREATE TABLE class_sessions (
    session_id        text PRIMARY KEY,   -- Zenoti's integer session id (spelt `sesion_id`)
    center_id         uuid,
    class_name        text,
    class_type        integer,            -- Zenoti's code, as sent
    status            text NOT NULL,      -- scheduled | cancelled | deleted (the last event's)
    -- As sent, with no offset and, unlike appointment groups, no `_in_center` twin: kept
    -- wall-clock, never shifted; the samples can't tell centre-local from UTC.
    start_time        timestamp,
    end_time          timestamp,
    duration_minutes  integer,            -- duration_in_mins as sent (need not be end - start)
    capacity          integer,
    web_capacity      integer,            -- places bookable online
    show_in_catalog   boolean,
    is_free_session   boolean,
    is_recurring      boolean,
    recurrence_id     text,
    deleted_at        timestamptz,        -- Class.Schedule.Deleted's event time; a later event clears it
    last_event_type   text NOT NULL,
    last_event_at     timestamptz,        -- envelope event_timestamp; NULL for bare bodies
    last_received_at  timestamptz NOT NULL,
    last_ingest_id    uuid NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX class_sessions_center_start ON class_sessions (center_id, start_time);

CREATE TABLE class_bookings (
    registration_id   text PRIMARY KEY,   -- Zenoti's integer registration id
    session_id        text,               -- class_sessions.session_id
    class_id          text,
    workshop_id       text,
    guest_id          uuid,
    center_id         uuid,
    -- booked | cancelled | deleted | no_show | approved | rejected: the last event's, and
    -- last_event_at its time.
    status            text NOT NULL,
    waitlist          boolean,
    booking_source    integer,            -- Zenoti's code, as sent
    group_invoice_id  uuid,
    recurrence_id     text,
    deleted_at        timestamptz,        -- Class.Booking.Deleted's event time; a later event clears it
    last_event_type   text NOT NULL,
    last_event_at     timestamptz,        -- envelope event_timestamp; NULL for bare bodies
    last_received_at  timestamptz NOT NULL,
    last_ingest_id    uuid NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX class_bookings_session ON class_bookings (session_id);
CREATE INDEX class_bookings_guest ON class_bookings (guest_id);
CREATE INDEX class_bookings_center_time ON class_bookings (center_id, last_event_at);
