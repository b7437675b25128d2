-- The schema the migrations in sql/migrations produce, read from the catalogs by
-- zenoti_ingest/schema_snapshot.py. Generated: do not edit; regenerate with `make schema`.

GRANT USAGE ON SCHEMA public TO PUBLIC;

CREATE TABLE public.appointment_groups (
    appointment_group_id uuid NOT NULL,
    invoice_id uuid,
    invoice_number text,
    invoice_number_prefix text,
    receipt_number text,
    center_id uuid,
    guest_id uuid,
    utm_source text,
    utm_medium text,
    status integer,
    no_show_fee_required boolean,
    cancellation_fee_required boolean,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.appointment_groups ADD CONSTRAINT appointment_groups_pkey PRIMARY KEY (appointment_group_id);
CREATE INDEX appointment_groups_center ON public.appointment_groups USING btree (center_id);
CREATE INDEX appointment_groups_guest ON public.appointment_groups USING btree (guest_id);
CREATE INDEX appointment_groups_invoice ON public.appointment_groups USING btree (invoice_id);

CREATE TABLE public.appointments (
    appointment_id uuid NOT NULL,
    appointment_group_id uuid,
    invoice_id uuid,
    invoice_number text,
    invoice_item_id uuid,
    center_id uuid,
    service_id uuid,
    service_name text,
    start_time timestamp without time zone,
    end_time timestamp without time zone,
    service_duration_minutes integer,
    has_add_ons boolean,
    is_add_on boolean,
    therapist_id uuid,
    therapist_name text,
    is_recurring boolean,
    appointment_type integer,
    therapist_request_type integer,
    room_id uuid,
    room_name text,
    equipment_id uuid,
    equipment_name text,
    progress integer,
    status text NOT NULL,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    start_time_in_center timestamp without time zone,
    end_time_in_center timestamp without time zone,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.appointments ADD CONSTRAINT appointments_pkey PRIMARY KEY (appointment_id);
CREATE INDEX appointments_center_start ON public.appointments USING btree (center_id, start_time);
CREATE INDEX appointments_center_start_in_center ON public.appointments USING btree (center_id, start_time_in_center);
CREATE INDEX appointments_group ON public.appointments USING btree (appointment_group_id);
CREATE INDEX appointments_invoice ON public.appointments USING btree (invoice_id);

CREATE TABLE public.backfill_calls (
    run_id bigint NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    call_key text NOT NULL,
    resource text NOT NULL,
    params jsonb NOT NULL,
    done_at timestamp with time zone,
    records integer
);
ALTER TABLE public.backfill_calls ADD CONSTRAINT backfill_calls_pkey PRIMARY KEY (run_id, call_key);
ALTER TABLE public.backfill_calls ADD CONSTRAINT backfill_calls_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.backfill_runs(run_id) ON DELETE CASCADE;
CREATE INDEX backfill_calls_pending ON public.backfill_calls USING btree (run_id, seq) WHERE (done_at IS NULL);

CREATE TABLE public.backfill_runs (
    run_id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    source text NOT NULL,
    plan_key text NOT NULL,
    since date NOT NULL,
    until date NOT NULL,
    horizon_days integer NOT NULL,
    resources text[] NOT NULL,
    centers text[],
    status text DEFAULT 'running'::text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    records_found bigint DEFAULT 0 NOT NULL,
    records_new bigint DEFAULT 0 NOT NULL,
    error text
);
ALTER TABLE public.backfill_runs ADD CONSTRAINT backfill_runs_pkey PRIMARY KEY (run_id);
ALTER TABLE public.backfill_runs ADD CONSTRAINT backfill_runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'done'::text, 'incomplete'::text, 'interrupted'::text])));
CREATE INDEX backfill_runs_source ON public.backfill_runs USING btree (source, plan_key, run_id);

CREATE TABLE public.class_bookings (
    registration_id text NOT NULL,
    session_id text,
    class_id text,
    workshop_id text,
    guest_id uuid,
    center_id uuid,
    status text NOT NULL,
    waitlist boolean,
    booking_source integer,
    group_invoice_id uuid,
    recurrence_id text,
    deleted_at timestamp with time zone,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.class_bookings ADD CONSTRAINT class_bookings_pkey PRIMARY KEY (registration_id);
CREATE INDEX class_bookings_center ON public.class_bookings USING btree (center_id);
CREATE INDEX class_bookings_guest ON public.class_bookings USING btree (guest_id);
CREATE INDEX class_bookings_session ON public.class_bookings USING btree (session_id);

CREATE TABLE public.class_sessions (
    session_id text NOT NULL,
    center_id uuid,
    class_name text,
    class_type integer,
    status text NOT NULL,
    start_time timestamp without time zone,
    end_time timestamp without time zone,
    duration_minutes integer,
    capacity integer,
    web_capacity integer,
    show_in_catalog boolean,
    is_free_session boolean,
    is_recurring boolean,
    recurrence_id text,
    deleted_at timestamp with time zone,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.class_sessions ADD CONSTRAINT class_sessions_pkey PRIMARY KEY (session_id);
CREATE INDEX class_sessions_center_start ON public.class_sessions USING btree (center_id, start_time);

CREATE VIEW public.dead_letters AS
 SELECT ingest_id,
    received_at,
    source,
    delivery_id,
    event_type,
    path_hint,
    failure_class,
    error,
    attempts,
    first_failed_at,
    last_failed_at,
    body
   FROM public.webhook_events
  WHERE (status = 'dead'::text);

CREATE TABLE public.delivery_ids (
    delivery_id text NOT NULL,
    ingest_id uuid NOT NULL,
    received_at timestamp with time zone NOT NULL
);
ALTER TABLE public.delivery_ids ADD CONSTRAINT delivery_ids_pkey PRIMARY KEY (delivery_id);
CREATE INDEX delivery_ids_received ON public.delivery_ids USING brin (received_at);

CREATE TABLE public.employees (
    employee_id uuid NOT NULL,
    code text,
    center_id uuid,
    is_consultant boolean,
    created_by uuid,
    first_name text,
    last_name text,
    gender integer,
    job_id uuid,
    job_name text,
    designation_id text,
    start_date timestamp without time zone,
    end_date timestamp without time zone,
    include_in_payroll integer,
    security_profile_id uuid,
    show_in_catalog boolean,
    deleted_at timestamp with time zone,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.employees ADD CONSTRAINT employees_pkey PRIMARY KEY (employee_id);
CREATE INDEX employees_center_job ON public.employees USING btree (center_id, job_id);
CREATE INDEX employees_job ON public.employees USING btree (job_id);

CREATE TABLE public.events (
    delivery_id text NOT NULL,
    event_id text,
    event_type text NOT NULL,
    resource text,
    entity_id text,
    center_id uuid,
    event_timestamp timestamp with time zone,
    ingest_id uuid NOT NULL,
    received_at timestamp with time zone NOT NULL,
    data jsonb NOT NULL
) PARTITION BY RANGE (received_at);
ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (delivery_id, received_at);
CREATE INDEX events_center_time ON ONLY public.events USING btree (center_id, event_timestamp);
CREATE INDEX events_entity ON ONLY public.events USING btree (entity_id);
CREATE INDEX events_event_id ON ONLY public.events USING btree (event_id);
CREATE INDEX events_type_time ON ONLY public.events USING btree (event_type, event_timestamp);

CREATE TABLE public.events_default (
    delivery_id text NOT NULL,
    event_id text,
    event_type text NOT NULL,
    resource text,
    entity_id text,
    center_id uuid,
    event_timestamp timestamp with time zone,
    ingest_id uuid NOT NULL,
    received_at timestamp with time zone NOT NULL,
    data jsonb NOT NULL
);
ALTER TABLE public.events_default ADD CONSTRAINT events_default_pkey PRIMARY KEY (delivery_id, received_at);
CREATE INDEX events_default_center_id_event_timestamp_idx ON public.events_default USING btree (center_id, event_timestamp);
CREATE INDEX events_default_entity_id_idx ON public.events_default USING btree (entity_id);
CREATE INDEX events_default_event_id_idx ON public.events_default USING btree (event_id);
CREATE INDEX events_default_event_type_event_timestamp_idx ON public.events_default USING btree (event_type, event_timestamp);

CREATE TABLE public.guest_memberships (
    user_membership_id uuid NOT NULL,
    group_user_membership_id uuid,
    guest_id uuid,
    membership_id uuid,
    membership_name text,
    membership_type integer,
    center_id uuid,
    status text NOT NULL,
    status_code integer,
    recurrence_status integer,
    member_code text,
    invoice_id uuid,
    invoice_number text,
    purchase_date timestamp without time zone,
    price_sales numeric,
    price_tax numeric,
    price_final numeric,
    expiry_date timestamp without time zone,
    next_collection_date timestamp without time zone,
    grace_period_date timestamp without time zone,
    grace_period_days integer,
    credit_balance numeric,
    is_refunded boolean,
    freeze_start_date timestamp without time zone,
    freeze_end_date timestamp without time zone,
    freeze_fee numeric,
    unfrozen_at timestamp with time zone,
    cancel_initiated_date timestamp without time zone,
    cancel_date timestamp without time zone,
    termination_date timestamp without time zone,
    cancel_reason text,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.guest_memberships ADD CONSTRAINT guest_memberships_pkey PRIMARY KEY (user_membership_id);
CREATE INDEX guest_memberships_center_expiry ON public.guest_memberships USING btree (center_id, expiry_date);
CREATE INDEX guest_memberships_center_purchase ON public.guest_memberships USING btree (center_id, purchase_date);
CREATE INDEX guest_memberships_center_status ON public.guest_memberships USING btree (center_id, status);
CREATE INDEX guest_memberships_guest ON public.guest_memberships USING btree (guest_id);
CREATE INDEX guest_memberships_membership ON public.guest_memberships USING btree (membership_id);

CREATE TABLE public.guest_packages (
    user_package_id uuid NOT NULL,
    guest_id uuid,
    package_id uuid,
    package_name text,
    package_type integer,
    center_id uuid,
    status_code integer,
    package_state integer,
    invoice_id uuid,
    invoice_number text,
    purchase_date timestamp without time zone,
    price_sales numeric,
    price_tax numeric,
    price_final numeric,
    start_date timestamp without time zone,
    end_date timestamp without time zone,
    end_date_with_grace timestamp without time zone,
    never_expires boolean,
    expiration_days integer,
    start_validity_at_first_redemption boolean,
    has_first_redemption boolean,
    completed_schedules integer,
    next_schedule_date timestamp without time zone,
    is_refunded boolean,
    services_total integer,
    services_used integer,
    services_balance integer,
    balance_amount numeric,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.guest_packages ADD CONSTRAINT guest_packages_pkey PRIMARY KEY (user_package_id);
CREATE INDEX guest_packages_center_end ON public.guest_packages USING btree (center_id, end_date);
CREATE INDEX guest_packages_center_purchase ON public.guest_packages USING btree (center_id, purchase_date);
CREATE INDEX guest_packages_guest ON public.guest_packages USING btree (guest_id);
CREATE INDEX guest_packages_package ON public.guest_packages USING btree (package_id);

CREATE TABLE public.guests (
    guest_id uuid NOT NULL,
    guest_number text,
    code text,
    center_id uuid,
    center_name text,
    created_date timestamp without time zone,
    first_name text,
    last_name text,
    gender integer,
    is_minor boolean,
    nationality_id integer,
    country_id integer,
    state_id integer,
    receive_transactional_email boolean,
    receive_transactional_sms boolean,
    receive_transactional_whatsapp boolean,
    receive_marketing_email boolean,
    receive_marketing_sms boolean,
    receive_lp_statement boolean,
    opt_in_for_loyalty_program boolean,
    transactional_email_optin integer,
    transactional_sms_optin integer,
    transactional_whatsapp_optin integer,
    marketing_email_optin integer,
    marketing_sms_optin integer,
    deleted_at timestamp with time zone,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.guests ADD CONSTRAINT guests_pkey PRIMARY KEY (guest_id);
CREATE INDEX guests_center_created ON public.guests USING btree (center_id, created_date);
CREATE INDEX guests_code ON public.guests USING btree (code);
CREATE INDEX guests_number ON public.guests USING btree (guest_number);

CREATE TABLE public.invoice_items (
    invoice_item_id uuid NOT NULL,
    invoice_id uuid NOT NULL,
    item_id uuid,
    item_name text,
    item_type integer,
    item_code text,
    quantity numeric,
    currency_id integer,
    price_sales numeric,
    price_tax numeric,
    price_final numeric,
    price_discount numeric,
    sold_by_id uuid,
    therapist_name text,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.invoice_items ADD CONSTRAINT invoice_items_pkey PRIMARY KEY (invoice_item_id);
CREATE INDEX invoice_items_invoice ON public.invoice_items USING btree (invoice_id);
CREATE INDEX invoice_items_item ON public.invoice_items USING btree (item_id);
CREATE INDEX invoice_items_sold_by ON public.invoice_items USING btree (sold_by_id);

CREATE TABLE public.invoices (
    invoice_id uuid NOT NULL,
    invoice_number text,
    receipt_number text,
    appointment_group_id uuid,
    center_id uuid,
    guest_id uuid,
    invoice_date timestamp without time zone,
    is_closed boolean,
    is_refund boolean,
    is_locked boolean,
    currency_id integer,
    net_price numeric,
    tax numeric,
    rounding_adjustment numeric,
    sum_total numeric,
    last_event_type text NOT NULL,
    last_event_at timestamp with time zone,
    last_received_at timestamp with time zone NOT NULL,
    last_ingest_id uuid NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version text COLLATE "C" DEFAULT ''::text NOT NULL,
    newest_columns smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    stragglers jsonb DEFAULT '{}'::jsonb NOT NULL
) WITH (fillfactor=50);
ALTER TABLE public.invoices ADD CONSTRAINT invoices_pkey PRIMARY KEY (invoice_id);
CREATE INDEX invoices_center_date ON public.invoices USING btree (center_id, invoice_date);
CREATE INDEX invoices_group ON public.invoices USING btree (appointment_group_id);
CREATE INDEX invoices_guest ON public.invoices USING btree (guest_id);

CREATE TABLE public.schema_migrations (
    version text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE public.schema_migrations ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

CREATE TABLE public.webhook_events (
    ingest_id uuid NOT NULL,
    received_at timestamp with time zone NOT NULL,
    delivery_id text NOT NULL,
    event_type text,
    path_hint text DEFAULT ''::text NOT NULL,
    event_timestamp timestamp with time zone,
    status text NOT NULL,
    failure_class text,
    error text,
    attempts integer DEFAULT 1 NOT NULL,
    body bytea NOT NULL,
    processed_at timestamp with time zone,
    source text DEFAULT ''::text NOT NULL,
    first_failed_at timestamp with time zone,
    last_failed_at timestamp with time zone,
    discard_reason text,
    discarded_at timestamp with time zone
) PARTITION BY RANGE (received_at);
ALTER TABLE public.webhook_events ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (ingest_id, received_at);
ALTER TABLE public.webhook_events ADD CONSTRAINT webhook_events_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'processed'::text, 'duplicate'::text, 'dead'::text, 'discarded'::text])));
CREATE INDEX webhook_events_dead ON ONLY public.webhook_events USING btree (received_at) WHERE (status = 'dead'::text);
CREATE INDEX webhook_events_delivery ON ONLY public.webhook_events USING btree (delivery_id);
CREATE INDEX webhook_events_type_received ON ONLY public.webhook_events USING btree (event_type, received_at);

CREATE TABLE public.webhook_events_default (
    ingest_id uuid NOT NULL,
    received_at timestamp with time zone NOT NULL,
    delivery_id text NOT NULL,
    event_type text,
    path_hint text DEFAULT ''::text NOT NULL,
    event_timestamp timestamp with time zone,
    status text NOT NULL,
    failure_class text,
    error text,
    attempts integer DEFAULT 1 NOT NULL,
    body bytea NOT NULL,
    processed_at timestamp with time zone,
    source text DEFAULT ''::text NOT NULL,
    first_failed_at timestamp with time zone,
    last_failed_at timestamp with time zone,
    discard_reason text,
    discarded_at timestamp with time zone
);
ALTER TABLE public.webhook_events_default ADD CONSTRAINT webhook_events_default_pkey PRIMARY KEY (ingest_id, received_at);
ALTER TABLE public.webhook_events_default ADD CONSTRAINT webhook_events_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'processed'::text, 'duplicate'::text, 'dead'::text, 'discarded'::text])));
CREATE INDEX webhook_events_default_delivery_id_idx ON public.webhook_events_default USING btree (delivery_id);
CREATE INDEX webhook_events_default_event_type_received_at_idx ON public.webhook_events_default USING btree (event_type, received_at);
CREATE INDEX webhook_events_default_received_at_idx ON public.webhook_events_default USING btree (received_at) WHERE (status = 'dead'::text);
