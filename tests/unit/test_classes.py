"""Class schedule and class booking events, loaded from Zenoti's sample pages into rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.fixtures import samples
from worker.pipeline import envelope, handlers, projection
from worker.schemas import classes
from zenoti_ingest import contract, errors

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
INGEST_ID = "01900000-0000-7000-8000-000000000001"

# The one flaw of the class pages: a center id that is not a GUID (`65t3`). A real delivery
# like it is a schema dead letter; mended, the page must load.
BAD_CENTER_ID = "442af543-6b2c-7677-65t3-4dff40d43987"
REPAIRS = {BAD_CENTER_ID: "442af543-6b2c-7677-65f3-4dff40d43987"}

SCHEDULE_PAGES = [
    ("schedule-created", "Class.Schedule.Created", "scheduled"),
    ("schedule-updated", "Class.Schedule.Updated", "scheduled"),
    ("schedule-cancelled", "Class.Schedule.Cancelled", "cancelled"),
    ("schedule-deleted", "Class.Schedule.Deleted", "deleted"),
]
BOOKING_PAGES = [
    ("booking-created", "Class.Booking.Created", "booked"),
    ("booking-cancelled", "Class.Booking.Cancelled", "cancelled"),
    ("booking-deleted", "Class.Booking.Deleted", "deleted"),
    ("booking-no-show", "Class.Booking.NoShow", "no_show"),
]
BARE_BOOKING_PAGES = [
    ("booking-approved", "Class.Booking.Approved", "approved"),
    ("booking-rejected", "Class.Booking.Rejected", "rejected"),
]


def repaired(name: str) -> dict:
    """A class sample page's body, valid as JSON and with every GUID a GUID."""
    text = samples.printed_body(name).decode()
    for broken, fixed in REPAIRS.items():
        text = text.replace(broken, fixed)
    return json.loads(text)


def project(body: bytes, hint: str = "") -> projection.Projected:
    delivery = contract.Delivery(INGEST_ID, 0, hint, body)
    event = envelope.open_delivery(delivery)
    applied = projection.Applied(event.event_type, event.event_timestamp, RECEIVED, INGEST_ID)
    return handlers.project(event, applied)


def one_row(body: bytes, table: str, hint: str = "") -> dict:
    [row] = project(body, hint).rows[table]
    return row


def bare(data: dict) -> bytes:
    return json.dumps(data).encode()


def test_every_class_event_type_is_registered_with_its_table():
    """The ten class event types map to the class schemas; both tables are declared."""
    assert set(classes.HANDLERS) == {
        "Class.Schedule.Created",
        "Class.Schedule.Updated",
        "Class.Schedule.Cancelled",
        "Class.Schedule.Deleted",
        "Class.Booking.Created",
        "Class.Booking.Cancelled",
        "Class.Booking.Deleted",
        "Class.Booking.NoShow",
        "Class.Booking.Approved",
        "Class.Booking.Rejected",
    }
    assert all(handlers.HANDLERS[name] is handler for name, handler in classes.HANDLERS.items())
    assert {handlers.TABLES["class_sessions"].key, handlers.TABLES["class_bookings"].key} == {
        "session_id",
        "registration_id",
    }


@pytest.mark.parametrize(
    "page", [p for p, _, _ in SCHEDULE_PAGES + BOOKING_PAGES + BARE_BOOKING_PAGES]
)
def test_class_pages_are_valid_json_as_printed(page):
    """None of the class pages needs a JSON repair (unlike other resources' pages)."""
    json.loads(samples.printed_body(page))


@pytest.mark.parametrize(("page", "event_type", "status"), SCHEDULE_PAGES)
def test_schedule_pages_load_field_by_field(page, event_type, status):
    """Each schedule page loads every column: the `sesion_id` typo, integer id as text,
    times wall-clock, 1 as true, status from the event type, Deleted's time as deleted_at."""
    document = json.loads(samples.printed_body(page))
    data = document["data"]
    projected = project(samples.printed_body(page))
    [row] = projected.rows["class_sessions"]
    event_at = datetime.fromisoformat(document["event_timestamp"][:26]).replace(tzinfo=UTC)
    assert row == {
        "session_id": str(data["sesion_id"]),
        "center_id": uuid.UUID(data["center_id"]),
        "class_name": data["class_name"],
        "class_type": data["class_type"],
        "start_time": datetime.fromisoformat(data["start_time"]),
        "end_time": datetime.fromisoformat(data["end_time"]),
        "duration_minutes": data["duration_in_mins"],
        "capacity": data["capacity"],
        "web_capacity": data["web_capacity"],
        "show_in_catalog": True,
        "is_free_session": False,
        "is_recurring": False,
        "recurrence_id": None,
        "status": status,
        "deleted_at": event_at if event_type.endswith("Deleted") else None,
        "last_event_type": event_type,
        "last_event_at": event_at,
        "last_received_at": RECEIVED,
        "last_ingest_id": INGEST_ID,
    }
    assert row["start_time"].tzinfo is None  # never shifted
    assert projected.entity_id == str(data["sesion_id"])
    assert projected.center_id == uuid.UUID(data["center_id"])


@pytest.mark.parametrize(("page", "event_type", "status"), BOOKING_PAGES)
def test_booking_pages_load_field_by_field(page, event_type, status):
    """Each enveloped booking page loads every column, integer ids as text, status from the
    event type, and the Deleted event's time as deleted_at."""
    document = json.loads(samples.printed_body(page))
    data = document["data"]
    projected = project(samples.printed_body(page))
    [row] = projected.rows["class_bookings"]
    event_at = datetime.fromisoformat(document["event_timestamp"][:26]).replace(tzinfo=UTC)
    assert row == {
        "registration_id": str(data["registration_id"]),
        "session_id": str(data["session_id"]),
        "class_id": str(data["class_id"]),
        "workshop_id": str(data["workshop_id"]),
        "guest_id": uuid.UUID(data["guest_id"]),
        "center_id": uuid.UUID(data["center_id"]),
        "waitlist": data["waitlist"],
        "booking_source": None,
        "group_invoice_id": None,
        "recurrence_id": None,
        "status": status,
        "deleted_at": event_at if event_type.endswith("Deleted") else None,
        "last_event_type": event_type,
        "last_event_at": event_at,
        "last_received_at": RECEIVED,
        "last_ingest_id": INGEST_ID,
    }
    assert projected.entity_id == str(data["registration_id"])


@pytest.mark.parametrize(("page", "event_type", "status"), BARE_BOOKING_PAGES)
def test_bare_booking_page_as_printed_is_a_schema_error_naming_center_id(page, event_type, status):
    """The Approved/Rejected pages' center id (`...-65t3-...`) is no GUID: a schema dead
    letter naming the field and its JSON type, never the value."""
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(samples.printed_body(page), event_type)
    assert caught.value.failure_class == "schema"
    assert caught.value.reason == "center_id: Not a valid GUID (got string)"
    assert "65t3" not in caught.value.reason


@pytest.mark.parametrize(("page", "event_type", "status"), BARE_BOOKING_PAGES)
def test_bare_booking_pages_repaired_load_field_by_field(page, event_type, status):
    """Mended, the bare Approved/Rejected pages load by their URL's event type: an uppercase
    invoice GUID, no event time, and none of the virtual guests' personal data in the row."""
    data = repaired(page)
    projected = project(bare(data), event_type)
    [row] = projected.rows["class_bookings"]
    assert row == {
        "registration_id": "43987",
        "session_id": "55467",
        "class_id": "4567",
        "workshop_id": "5543",
        "guest_id": uuid.UUID("204ad224-8f5d-4996-90f1-7add19e30213"),
        "center_id": uuid.UUID(REPAIRS[BAD_CENTER_ID]),
        "waitlist": True,
        "booking_source": 0,
        "group_invoice_id": uuid.UUID("c35c1c68-208a-4cdb-a01e-dc541ba9d3c1"),
        "recurrence_id": "23456",
        "status": status,
        "deleted_at": None,
        "last_event_type": event_type,
        "last_event_at": None,
        "last_received_at": RECEIVED,
        "last_ingest_id": INGEST_ID,
    }
    values = " ".join(map(str, row.values()))
    assert "test@email.com" not in values and "lastname" not in values
    assert "7653467398" not in values


def test_session_id_spelt_right_also_loads_and_missing_is_named():
    """Should Zenoti fix `sesion_id`, `session_id` keys the row; with neither (or ""), the
    event is a schema error naming `sesion_id`."""
    data = json.loads(samples.printed_body("schedule-created"))["data"]
    data["session_id"] = data.pop("sesion_id")
    body = samples.envelope("Class.Schedule.Created", data, "s1", "2022-03-22T10:59:11Z")
    assert one_row(body, "class_sessions")["session_id"] == "89604"
    for missing in ({}, {"session_id": ""}, {"sesion_id": None}):
        rest = {k: v for k, v in data.items() if k != "session_id"}
        body = samples.envelope(
            "Class.Schedule.Created", {**rest, **missing}, "s2", "2022-03-22T10:59:11Z"
        )
        with pytest.raises(errors.SchemaMismatch, match=r"^sesion_id: "):
            project(body)


@pytest.mark.parametrize("registration_id", [None, "", "missing"])
def test_booking_without_registration_id_is_a_schema_error(registration_id):
    """A booking with no registration id can't be keyed: a schema error naming the field."""
    data = json.loads(samples.printed_body("booking-created"))["data"]
    if registration_id == "missing":
        del data["registration_id"]
    else:
        data["registration_id"] = registration_id
    body = samples.envelope("Class.Booking.Created", data, "b1", "2022-03-22T12:32:30Z")
    with pytest.raises(errors.SchemaMismatch, match=r"^registration_id: "):
        project(body)


def test_ids_as_strings_or_integers_key_the_same_row():
    """`registration_id`, `session_id`, `workshop_id` load as the same text either way."""
    data = json.loads(samples.printed_body("booking-created"))["data"]
    as_text = {
        **data,
        **{k: str(data[k]) for k in ("registration_id", "session_id", "class_id", "workshop_id")},
    }
    rows = [
        one_row(
            samples.envelope("Class.Booking.Created", d, "b1", "2022-03-22T12:32:30Z"),
            "class_bookings",
        )
        for d in (data, as_text)
    ]
    assert rows[0] == rows[1]


def test_quirks_nil_and_empty_guids_uppercase_and_extra_keys():
    """The nil GUID and "" are NULL, uppercase GUIDs load, unknown keys are ignored."""
    data = json.loads(samples.printed_body("booking-created"))["data"]
    data["guest_id"] = "00000000-0000-0000-0000-000000000000"
    data["center_id"] = data["center_id"].upper()
    data["group_invoice_id"] = ""
    data["brand_new_key"] = {"nested": [1]}
    row = one_row(
        samples.envelope("Class.Booking.Created", data, "b1", "2022-03-22T12:32:30Z"),
        "class_bookings",
    )
    assert row["guest_id"] is None and row["group_invoice_id"] is None
    assert row["center_id"] == uuid.UUID("e1693623-bda5-4b3e-a2a7-611ea4f1f7ad")


def test_mistyped_values_are_named_by_path_and_type_never_value():
    """A wrong type is reported as `field: problem (got type)`, never quoting the value."""
    data = json.loads(samples.printed_body("schedule-created"))["data"]
    data["capacity"] = "ten-SECRET"
    data["start_time"] = 20220321
    body = samples.envelope("Class.Schedule.Created", data, "s1", "2022-03-22T10:59:11Z")
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(body)
    assert "capacity: Not a valid integer (got string)" in caught.value.reason
    assert "start_time: Not a valid ISO 8601 datetime (got number)" in caught.value.reason
    assert "SECRET" not in caught.value.reason


def test_bare_deleted_event_is_deleted_at_its_receipt_time():
    """Without an event timestamp, a Deleted event's deleted_at is when it was received."""
    data = json.loads(samples.printed_body("booking-deleted"))["data"]
    row = one_row(bare(data), "class_bookings", "Class.Booking.Deleted")
    assert (row["deleted_at"], row["last_event_at"]) == (RECEIVED, None)
