"""The API's records mapped onto the webhooks' tables (worker/schemas/api_appointments.py, the
Invoice.Snapshot handler), the snapshot path hint, exact bytes per record, and the plan."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from backfill import client, plan
from tests.fixtures.fake_zenoti import SHAPES
from worker.pipeline import envelope, handlers, projection
from worker.schemas import api_appointments
from zenoti_ingest import contract, errors, snapshots

CENTER = "ce47e400-bbbb-44a4-1718-000000000001"
READ_AT_US = 1_796_000_000_000_000
INGEST_ID = "01900000-0000-7000-8000-000000000001"


def project(hint: str, body: bytes) -> tuple[envelope.Event, projection.Projected]:
    delivery = contract.Delivery(INGEST_ID, READ_AT_US, hint, body)
    event = envelope.open_delivery(delivery)
    applied = projection.Applied(
        event.event_type, event.event_timestamp, event.event_timestamp, INGEST_ID
    )
    return event, handlers.project(event, applied)


def listed() -> list[tuple[dict, bytes]]:
    body = (SHAPES / "appointments-list.json").read_bytes()
    return client.split_array(body, "GET /v1/appointments")


def test_each_listed_appointment_maps_onto_the_appointments_table():
    """The fixture's completed, cancelled and no-show rows become appointments rows named
    as the webhooks name them, with the center they were read for; the block-out writes
    nothing."""
    hint = snapshots.path_hint("Appointment", CENTER)
    rows = [project(hint, raw)[1].rows.get("appointments") for _, raw in listed()]
    assert rows[3] is None  # the block-out (status 10, no service)
    completed, cancelled, no_show = (r[0] for r in rows[:3])
    assert [completed["status"], cancelled["status"], no_show["status"]] == [
        "closed",
        "cancelled",
        "no_show",
    ]
    assert str(completed["appointment_id"]) == "0b6c1d8e-1111-4a6a-9d1e-000000000001"
    assert str(completed["therapist_id"]) == "7e4a0000-9999-42e2-f596-000000000001"
    assert completed["therapist_name"] == "Sam Therapist"
    assert completed["service_name"] == "60 Min Massage" and completed["progress"] == 2
    assert str(completed["center_id"]) == CENTER
    assert completed["start_time"] == datetime(2026, 11, 3, 10, 0)  # centre-local, unshifted
    assert completed["start_time_in_center"] == completed["start_time"]
    assert "room_id" not in completed  # null in the list: left as the table has it
    assert completed["last_event_type"] == "Appointment.Snapshot"


def test_a_snapshot_is_versioned_by_when_zenoti_answered():
    """The event time of a snapshot is the delivery's receipt time (the answer's Date), its
    event type the hint's first two words, its delivery id the hash of source, hint and
    bytes: the same record read again is the same delivery."""
    hint = snapshots.path_hint("Appointment", CENTER)
    _, raw = listed()[0]
    event, _ = project(hint, raw)
    assert event.event_type == "Appointment.Snapshot" and event.resource == "Appointment"
    assert event.event_timestamp == datetime.fromtimestamp(READ_AT_US / 1e6, UTC)
    assert event.delivery_id == snapshots.delivery_id("", hint, raw)
    assert project(hint, raw)[0].delivery_id == event.delivery_id
    assert project(hint, raw.replace(b'"progress": 2', b'"progress": 1'))[0].delivery_id != (
        event.delivery_id
    )


@pytest.mark.parametrize(
    ("code", "progress", "word"),
    [
        (0, 0, "booked"),
        (0, 1, "started"),
        (4, 2, "completed"),
        (1, 2, "closed"),
        (99, 0, "status_99"),
    ],
)
def test_status_words(code, progress, word):
    """An open appointment's progress says more than its status; closed, cancelled and
    no-show say all; an unknown code is kept, named by its number."""
    assert api_appointments.status(code, progress) == word


def test_the_invoice_detail_maps_like_invoice_closed():
    """`GET /v1/invoices/{id}` has Invoice.Closed's data shape: the invoice, its two items and
    its appointment (closed); the same invoice still open closes no appointment."""
    body = (SHAPES / "invoice-detail.json").read_bytes()
    _, projected = project(snapshots.path_hint("Invoice"), body)
    assert {t: len(r) for t, r in projected.rows.items()} == {
        "invoices": 1,
        "invoice_items": 2,
        "appointments": 1,
    }
    assert projected.rows["appointments"][0]["status"] == "closed"
    still_open = body.replace(b'"is_closed": true', b'"is_closed": false')
    _, projected = project(snapshots.path_hint("Invoice"), still_open)
    assert "appointments" not in projected.rows and len(projected.rows["invoices"]) == 1


def test_a_record_that_does_not_fit_is_a_schema_dead_letter_naming_the_field():
    hint = snapshots.path_hint("Appointment", CENTER)
    with pytest.raises(errors.SchemaMismatch, match=r"appointment_id: .*\(got number\)"):
        project(hint, b'{"appointment_id": 7}')


def test_path_hints_round_trip_and_stay_event_type_names():
    hint = snapshots.path_hint("Appointment", CENTER)
    assert contract.EVENT_TYPE.fullmatch(hint)
    assert snapshots.parse_hint(hint)[0] == "Appointment.Snapshot"
    assert str(snapshots.parse_hint(hint)[1]) == CENTER
    assert snapshots.parse_hint("Invoice.Snapshot") == ("Invoice.Snapshot", None)
    assert snapshots.parse_hint("Appointment.Started") is None
    assert snapshots.parse_hint("Appointment.Snapshot.Xnope") is None


def test_split_array_keeps_each_records_exact_bytes():
    """Whitespace, key order and escapes as Zenoti sent them, not as we would write them."""
    body = '[ {"b": 1,  "a": "\\u00e9", "n": "Zoë"} ,\n{"c":[1, 2]}]'.encode()
    items = client.split_array(body, "GET /x")
    assert [raw for _, raw in items] == [
        '{"b": 1,  "a": "\\u00e9", "n": "Zoë"}'.encode(),
        b'{"c":[1, 2]}',
    ]
    assert [value for value, _ in items] == [{"b": 1, "a": "é", "n": "Zoë"}, {"c": [1, 2]}]
    assert client.split_array(b" [ ] ", "GET /x") == []
    fixture = (SHAPES / "appointments-list.json").read_bytes()
    assert [json.loads(raw) for _, raw in client.split_array(fixture, "GET /x")] == json.loads(
        fixture
    )


def test_windows_are_seven_days_and_the_horizon_extends_appointments_only():
    request = plan.Request("", date(2026, 11, 1), date(2026, 11, 10), horizon_days=14)
    calls = plan.plan(request, [CENTER])
    appointments = [c for c in calls if c.resource == plan.APPOINTMENTS]
    sales = [c for c in calls if c.resource == plan.INVOICES]
    assert [(c.params["start_date"], c.params["end_date"]) for c in appointments] == [
        ("2026-11-01", "2026-11-08"),
        ("2026-11-08", "2026-11-15"),
        ("2026-11-15", "2026-11-22"),
        ("2026-11-22", "2026-11-29"),
    ]
    assert [(c.params["start_date"], c.params["end_date"]) for c in sales] == [
        ("2026-11-01", "2026-11-07"),
        ("2026-11-08", "2026-11-14"),
    ]
    assert len({c.key for c in calls}) == len(calls)


def test_class_windows_follow_the_appointments_and_their_horizon():
    request = plan.Request("", date(2026, 11, 1), date(2026, 11, 10), ("classes",), horizon_days=14)
    calls = plan.plan(request, [CENTER])
    assert {c.resource for c in calls} == {plan.CLASSES}
    assert [(c.params["start_date"], c.params["end_date"]) for c in calls] == [
        ("2026-11-01", "2026-11-08"),
        ("2026-11-08", "2026-11-15"),
        ("2026-11-15", "2026-11-22"),
        ("2026-11-22", "2026-11-29"),
    ]
    assert plan.CLASSES not in plan.DEFAULT_RESOURCES


def test_the_plan_key_depends_on_the_arguments_only():
    one = plan.Request("", date(2026, 11, 1), date(2026, 11, 3), ("invoices", "appointments"))
    same = plan.Request("", date(2026, 11, 1), date(2026, 11, 3), ("appointments", "invoices"))
    other = plan.Request("east", date(2026, 11, 1), date(2026, 11, 3))
    assert one.key() == same.key() != other.key()


def test_each_listed_employee_maps_onto_the_employees_table():
    """The list's short shape: id, code, names, gender and job, with the center listed for;
    a listed employee is active (deleted_at cleared); nothing else is written."""
    body = (SHAPES / "employees-list.json").read_bytes()
    hint = snapshots.path_hint("Employee", CENTER)
    raws = client.split_array(body, "GET /v1/centers/{center_id}/employees", "employees")
    rows = [project(hint, raw)[1].rows["employees"][0] for _, raw in raws]
    sam = rows[0]
    assert str(sam["employee_id"]) == "7e4a0000-9999-42e2-f596-000000000001"
    assert (sam["code"], sam["first_name"], sam["last_name"], sam["gender"]) == (
        "E007",
        "Sam",
        "Therapist",
        1,
    )
    assert str(sam["job_id"]) == "10b00000-abab-4c4c-8d8d-000000000001"
    assert sam["job_name"] == "THERAPIST" and str(sam["center_id"]) == CENTER
    assert sam["deleted_at"] is None and "is_consultant" not in sam
    assert len(rows) == 3


def test_each_listed_guest_maps_onto_the_guests_table_without_contact_details():
    """The list's short shape: id, code, center, names, gender; the email and phone stay in
    the archived body (and events.data), never in a column; a listed guest is not deleted."""
    body = (SHAPES / "guests-list.json").read_bytes()
    hint = snapshots.path_hint("Guest", CENTER)
    raws = client.split_array(body, "GET /v1/guests", "guests")
    dana = project(hint, raws[0][1])[1].rows["guests"][0]
    assert str(dana["guest_id"]) == "6e57a000-8888-41d1-e485-000000000001"
    assert (dana["code"], dana["first_name"], dana["last_name"], dana["gender"]) == (
        "G1001",
        "Dana",
        "Example",
        0,
    )
    assert str(dana["center_id"]) == CENTER and dana["center_name"] == "Demo Center One"
    assert dana["deleted_at"] is None
    assert "example.invalid" not in json.dumps(dana, default=str)
    assert "is_minor" not in dana  # not in the list: left as the table has it


def members() -> list[tuple[dict, bytes]]:
    body = (SHAPES / "center-members.json").read_bytes()
    return client.split_array(body, "GET /v1/centers/{center_id}/members", "members")


def test_each_listed_member_maps_onto_guest_memberships_as_the_webhooks_name_it():
    """The members list's names ("Frozen", "Recurring") become the webhooks' codes and the
    table's status word; `id` is the user membership; the guest's name stays in the body; a
    date the list gives as null is not written (left as the table has it)."""
    hint = snapshots.path_hint("Membership", CENTER)
    frozen, cancelled = (project(hint, raw)[1].rows["guest_memberships"][0] for _, raw in members())
    assert str(frozen["user_membership_id"]) == "a5e7b000-1313-4d4d-9e9e-000000000001"
    assert (frozen["status"], frozen["status_code"], frozen["recurrence_status"]) == (
        "frozen",
        3,
        3,
    )
    assert str(frozen["guest_id"]) == "6e57a000-8888-41d1-e485-000000000001"
    assert str(frozen["membership_id"]) == "3e3b0000-1414-4f4f-a0a0-000000000001"
    assert (frozen["membership_name"], frozen["membership_type"]) == ("Gold 12 Months", 1)
    assert frozen["freeze_start_date"] == datetime(2026, 11, 2)
    assert frozen["purchase_date"] == datetime(2025, 12, 20)
    assert frozen["expiry_date"] == datetime(2026, 12, 31)
    assert str(frozen["center_id"]) == CENTER
    assert "cancel_date" not in frozen and "price_final" not in frozen
    assert (cancelled["status"], cancelled["cancel_date"]) == ("cancelled", datetime(2026, 11, 4))
    assert "freeze_start_date" not in cancelled
    assert "Dana" not in json.dumps([frozen, cancelled], default=str)
    assert frozen["last_event_type"] == "Membership.Snapshot"


@pytest.mark.parametrize(
    ("status", "word", "code"),
    [
        ('"InActive"', "inactive", 2),
        ('"Not Started"', "not_started", 7),
        ("1", "active", 1),
        ('"5"', "expired", 5),
        ("11", "status_11", 11),
        ('"Paused"', "paused", None),
    ],
)
def test_a_members_status_as_a_name_or_a_code(status, word, code):
    """Names in any spelling, codes as numbers or numeric strings; an unknown name is kept as
    the word, with no code; an unknown code is named by its number."""
    body = f'{{"id": "a5e7b000-1313-4d4d-9e9e-000000000009", "status": {status}}}'.encode()
    [row] = project(snapshots.path_hint("Membership", CENTER), body)[1].rows["guest_memberships"]
    assert row["status"] == word and row.get("status_code") == code


@pytest.mark.parametrize("status", ["null", '""', "true"])
def test_a_member_without_a_usable_status_is_a_schema_dead_letter(status):
    body = f'{{"id": "a5e7b000-1313-4d4d-9e9e-000000000009", "status": {status}}}'.encode()
    with pytest.raises(errors.SchemaMismatch, match=r"^status: "):
        project(snapshots.path_hint("Membership", CENTER), body)


def test_each_listed_class_session_maps_onto_class_sessions():
    """The session's integer id as the webhooks' `sesion_id` text; name, times, capacity;
    completed and active sessions are `scheduled` (the webhooks' word), a listed session is
    not deleted; what the list does not carry is not written."""
    body = (SHAPES / "class-sessions.json").read_bytes()
    hint = snapshots.path_hint("ClassSession", CENTER)
    raws = client.split_array(body, "GET /v1/classes/sessions", "sessions")
    rows = [project(hint, raw)[1].rows["class_sessions"][0] for _, raw in raws]
    completed, active = rows
    assert (completed["session_id"], active["session_id"]) == ("90001", "90002")
    assert completed["class_name"] == "Morning Yoga" and completed["capacity"] == 12
    assert completed["start_time"] == datetime(2026, 11, 4, 7, 0)  # centre-local
    assert completed["end_time"] == datetime(2026, 11, 4, 8, 0)
    assert str(completed["center_id"]) == CENTER
    assert {completed["status"], active["status"]} == {"scheduled"}
    assert completed["deleted_at"] is None
    assert "class_type" not in completed and "web_capacity" not in completed
    assert completed["last_event_type"] == "ClassSession.Snapshot"
    cancelled = body.replace(b'"session_status": 4', b'"session_status": 1')
    raw = client.split_array(cancelled, "GET /v1/classes/sessions", "sessions")[0][1]
    assert project(hint, raw)[1].rows["class_sessions"][0]["status"] == "cancelled"


def test_a_listed_session_and_the_webhooks_share_a_key():
    """The snapshot's session id is the key Class.Schedule.Created writes (`sesion_id`)."""
    body = b'{"id": 89604, "session_status": 0}'
    [row] = project(snapshots.path_hint("ClassSession", CENTER), body)[1].rows["class_sessions"]
    webhook = handlers.HANDLERS["Class.Schedule.Created"]
    created = webhook.schema.load({"sesion_id": 89604})
    assert row["session_id"] == created.session_id == "89604"


def test_each_listed_package_maps_like_guest_package_creation():
    """A guest's Series package row has Guest.Package.Creation's shape and writes the same
    columns: plan, state, invoice, validity, the services' counters summed; like the webhook,
    it names no guest (left as the table has it; its invoice names the guest)."""
    body = (SHAPES / "guest-packages.json").read_bytes()
    hint = snapshots.path_hint("Package", CENTER)
    [(_, raw)] = client.split_array(body, "GET /v1/guests/{guest_id}/packages", "guest_packages")
    [row] = project(hint, raw)[1].rows["guest_packages"]
    assert str(row["user_package_id"]) == "fe640000-1515-4b5b-8c8c-000000000001"
    assert (row["package_name"], row["status_code"], row["package_state"]) == (
        "5 x 60 Min Massage",
        1,
        1,
    )
    assert str(row["invoice_id"]) == "9a7d3b21-3333-4c8c-9f30-000000000004"
    assert (row["services_total"], row["services_used"], row["services_balance"]) == (5, 0, 5)
    assert row["end_date"] == datetime(2027, 5, 5) and str(row["center_id"]) == CENTER
    assert "guest_id" not in row
    assert row["last_event_type"] == "Package.Snapshot"
    webhook = handlers.HANDLERS["Guest.Package.Creation"]
    assert handlers.HANDLERS["Package.Snapshot"] is webhook


def test_one_sales_report_feeds_invoices_and_packages():
    """Asked for both, the report is planned once per window, counted as invoices, feeding
    both; packages alone plan the same report, counted as packages."""
    both = plan.plan(
        plan.Request("", date(2026, 11, 1), date(2026, 11, 3), ("invoices", "packages")), [CENTER]
    )
    [report] = both
    assert report.resource == plan.INVOICES
    assert plan.feeds(report, plan.INVOICES) and plan.feeds(report, plan.PACKAGES)
    [alone] = plan.plan(
        plan.Request("", date(2026, 11, 1), date(2026, 11, 3), ("packages",)), [CENTER]
    )
    assert alone.resource == plan.PACKAGES and alone.key == report.key
    assert not plan.feeds(alone, plan.INVOICES) and plan.feeds(alone, plan.PACKAGES)
    following = plan.next_sales_page(alone, 250)
    assert following.resource == plan.PACKAGES and plan.feeds(following, plan.PACKAGES)
    checkpointed = plan.Call(
        report.key, plan.INVOICES, {k: v for k, v in report.params.items() if k != "feeds"}
    )
    assert plan.feeds(checkpointed, plan.INVOICES) and not plan.feeds(checkpointed, plan.PACKAGES)
    assert plan.PACKAGES not in plan.DEFAULT_RESOURCES
