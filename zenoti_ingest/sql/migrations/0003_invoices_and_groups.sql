-- Personal data: the guest of a group or an invoice is kept as guest_id only (it joins to
-- guests); the guest's names, phone and email stay in events.data (joined by last_ingest_id =
-- events.ingest_id). An invoice item keeps the employee's name as Zenoti labels it
-- (therapist_name), like appointments.therapist_name: revenue per employee is a daily report,
-- and it should not need the Employee webhooks switched on to name people.

-- Current state of each appointment group: the newest AppointmentGroup.* event by
-- (event_timestamp, receipt). Created and Status carry different columns; each updates only
-- its own (and the shared invoice ones).
CREATE TABLE appointment_groups (
    appointment_group_id      uuid PRIMARY KEY,
    invoice_id                uuid,            -- Created, Status
    invoice_number            text,            -- Created, Status
    invoice_number_prefix     text,            -- Created: the centre's prefix ("BEL1")
    receipt_number            text,            -- Status, as sent ("0" in the sample)
    center_id                 uuid,            -- Created
    guest_id                  uuid,            -- Created: guest.id
    utm_source                text,            -- Created: the booking's marketing source
    utm_medium                text,            -- Created
    status                    integer,         -- Status: appointment_group_status, Zenoti's code
    no_show_fee_required      boolean,         -- Status: is_noshowfeerequired "Yes"/"No"
    cancellation_fee_required boolean,         -- Status: is_cancellationfeerequired "Yes"/"No"
    last_event_type           text NOT NULL,
    last_event_at             timestamptz,     -- envelope event_timestamp
    last_received_at          timestamptz NOT NULL,
    last_ingest_id            uuid NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX appointment_groups_center ON appointment_groups (center_id, last_event_at);
CREATE INDEX appointment_groups_guest ON appointment_groups (guest_id);
CREATE INDEX appointment_groups_invoice ON appointment_groups (invoice_id);

-- Current state of each invoice: the newest Invoice.Closed by (event_timestamp, receipt).
-- Amounts are numeric without a scale: stored exactly as sent, never rounded.
CREATE TABLE invoices (
    invoice_id           uuid PRIMARY KEY,
    invoice_number       text,
    receipt_number       text,
    appointment_group_id uuid,
    center_id            uuid,
    guest_id             uuid,
    invoice_date         timestamp,            -- centre-local, as sent
    is_closed            boolean,              -- as sent: an Invoice.Closed may say false
    is_refund            boolean,
    is_locked            boolean,              -- "lock"
    currency_id          integer,              -- total_price.currency_id
    net_price            numeric,              -- total_price.*
    tax                  numeric,
    rounding_adjustment  numeric,
    sum_total            numeric,
    last_event_type      text NOT NULL,
    last_event_at        timestamptz,          -- envelope event_timestamp
    last_received_at     timestamptz NOT NULL,
    last_ingest_id       uuid NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invoices_center_date ON invoices (center_id, invoice_date);
CREATE INDEX invoices_guest ON invoices (guest_id);
CREATE INDEX invoices_group ON invoices (appointment_group_id);

-- Current state of each invoice line, written with its invoice. A line dropped from an
-- invoice closed again keeps its row: the lines of an invoice's latest version are those
-- with invoice_items.last_ingest_id = invoices.last_ingest_id.
CREATE TABLE invoice_items (
    invoice_item_id  uuid PRIMARY KEY,
    invoice_id       uuid NOT NULL,            -- invoices.invoice_id (no FK: rows of one batch)
    item_id          uuid,                     -- "id": the service, product, package... sold
    item_name        text,                     -- "name"
    item_type        integer,                  -- "type", Zenoti's code (0, 2, 3 in the sample)
    item_code        text,                     -- "code"
    quantity         numeric,
    currency_id      integer,                  -- price.*
    price_sales      numeric,
    price_tax        numeric,
    price_final      numeric,
    price_discount   numeric,
    sold_by_id       uuid,                     -- "sale_by_id": the employee
    therapist_name   text,                     -- as labelled; the sale_by_id employee's name
    last_event_type  text NOT NULL,
    last_event_at    timestamptz,              -- envelope event_timestamp
    last_received_at timestamptz NOT NULL,
    last_ingest_id   uuid NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invoice_items_invoice ON invoice_items (invoice_id);
CREATE INDEX invoice_items_item ON invoice_items (item_id);
CREATE INDEX invoice_items_sold_by ON invoice_items (sold_by_id);

-- AppointmentGroup.Created also writes appointments (status 'booked', no progress), and sends
-- centre-local times beside start_time/end_time. In its sample start_time is 7 hours after
-- start_time_in_center for a Bellevue centre in July: there, start_time is UTC without an offset.
ALTER TABLE appointments
    ADD COLUMN start_time_in_center timestamp,  -- centre-local; AppointmentGroup.Created only
    ADD COLUMN end_time_in_center   timestamp;

CREATE INDEX appointments_center_start_in_center ON appointments (center_id, start_time_in_center);
CREATE INDEX appointments_invoice ON appointments (invoice_id);
