-- Current state of each guest membership (Guest.Membership.*) and guest package
-- (Guest.Package.*): the newest event by (event_timestamp, receipt). An event writes only the
-- columns its body carries (Freeze has no price, only Created has guest_id), so a column keeps
-- the value of the newest event that had it. Amounts are numeric, exact as sent (no scale:
-- nothing is rounded). Business dates carry no offset in the bodies: timestamp, centre-local.
-- No personal data in columns: the members' names, who sold, froze or cancelled (employee
-- names) and free-text comments stay in events.data (events.ingest_id = last_ingest_id, or
-- events.entity_id = the key as text); guest_id joins to guests.

CREATE TABLE guest_memberships (
    user_membership_id       uuid PRIMARY KEY,
    group_user_membership_id uuid,
    guest_id                 uuid,           -- sent by Created only
    membership_id            uuid,           -- the membership plan sold
    membership_name          text,           -- the plan's name (not personal): what reports group by
    membership_type          integer,
    center_id                uuid,
    status                   text NOT NULL,  -- from the event: active, frozen, cancelled
    status_code              integer,        -- Zenoti's `status` as sent (1 even when frozen or cancelled)
    recurrence_status        integer,
    member_code              text,
    invoice_id               uuid,
    invoice_number           text,
    purchase_date            timestamp,
    price_sales              numeric,
    price_tax                numeric,
    price_final              numeric,
    expiry_date              timestamp,
    next_collection_date     timestamp,
    grace_period_date        timestamp,
    grace_period_days        integer,
    credit_balance           numeric,        -- credit_balance.total
    is_refunded              boolean,
    freeze_start_date        timestamp,      -- the latest freeze (kept after Unfreeze)
    freeze_end_date          timestamp,
    freeze_fee               numeric,
    unfrozen_at              timestamptz,    -- Unfreeze's event time (receipt time when bare); NULL again on Freeze
    cancel_initiated_date    timestamp,      -- the latest cancellation (kept after Reinstate)
    cancel_date              timestamp,
    termination_date         timestamp,
    cancel_reason            text,           -- the reason chosen from the centre's list
    last_event_type          text NOT NULL,
    last_event_at            timestamptz,    -- envelope event_timestamp; NULL for bare bodies
    last_received_at         timestamptz NOT NULL,
    last_ingest_id           uuid NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX guest_memberships_guest ON guest_memberships (guest_id);
CREATE INDEX guest_memberships_center_status ON guest_memberships (center_id, status);
CREATE INDEX guest_memberships_center_expiry ON guest_memberships (center_id, expiry_date);
CREATE INDEX guest_memberships_center_purchase ON guest_memberships (center_id, purchase_date);
CREATE INDEX guest_memberships_membership ON guest_memberships (membership_id);

CREATE TABLE guest_packages (
    user_package_id          uuid PRIMARY KEY,
    guest_id                 uuid,           -- no sample carries one: filled if a body does
    package_id               uuid,           -- the package sold
    package_name             text,           -- the package's name (not personal)
    package_type             integer,
    center_id                uuid,
    status_code              integer,        -- Zenoti's `status` as sent
    package_state            integer,        -- Zenoti's `user_package_state` as sent
    invoice_id               uuid,
    invoice_number           text,
    purchase_date            timestamp,
    price_sales              numeric,
    price_tax                numeric,
    price_final              numeric,
    start_date               timestamp,      -- validity: date.start, date.end, date.end_date_with_grace
    end_date                 timestamp,
    end_date_with_grace      timestamp,
    never_expires            boolean,
    expiration_days          integer,
    start_validity_at_first_redemption boolean,
    has_first_redemption     boolean,
    completed_schedules      integer,
    next_schedule_date       timestamp,
    is_refunded              boolean,
    -- Summed over the package's services, from events that list them (Creation in the samples):
    services_total           integer,        -- sessions sold
    services_used            integer,        -- sessions redeemed
    services_balance         integer,        -- sessions left
    balance_amount           numeric,        -- value left to redeem
    last_event_type          text NOT NULL,
    last_event_at            timestamptz,    -- envelope event_timestamp; NULL for bare bodies
    last_received_at         timestamptz NOT NULL,
    last_ingest_id           uuid NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX guest_packages_guest ON guest_packages (guest_id);
CREATE INDEX guest_packages_center_end ON guest_packages (center_id, end_date);
CREATE INDEX guest_packages_center_purchase ON guest_packages (center_id, purchase_date);
CREATE INDEX guest_packages_package ON guest_packages (package_id);
