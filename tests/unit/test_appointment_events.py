"""The two appointment events, parsed the way Zenoti really sends them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.fixtures import samples
from worker.pipeline import envelope, handlers, projection
from zenoti_ingest import contract, errors

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


def project(body: bytes, hint: str = "") -> projection.Projected:
    delivery = contract.Delivery("01900000-0000-7000-8000-000000000001", 0, hint, body)
    event = envelope.open_delivery(delivery)
    applied = projection.Applied(
        event.event_type, event.event_timestamp, RECEIVED, delivery.ingest_id
    )
    return handlers.project(event, applied)


def rows(body: bytes, hint: str = "") -> list[dict]:
    return project(body, hint).rows["appointments"]


@pytest.mark.parametrize(
    ("page", "event_type", "status", "progress"),
    [
        ("appointment-started", "Appointment.Started", "started", 1),
        ("appointment-completed", "Appointment.Completed", "completed", 2),
    ],
)
def test_sample_pages_load_field_by_field(page, event_type, status, progress):
    """Each sample (its page typo mended) loads every documented field, quirks included."""
    data = samples.repaired_json(page)
    [row] = rows(samples.repaired_body(page), event_type)
    appointment = data["appointments"][0]
    assert row["appointment_id"] == uuid.UUID(appointment["id"])
    assert row["invoice_id"] == uuid.UUID(data["invoice_id"])
    assert row["invoice_number"] == data["invoice_number"]
    assert row["appointment_group_id"] == uuid.UUID(data["appointment_group_id"])
    assert row["center_id"] == uuid.UUID(data["center_id"])
    assert row["service_duration_minutes"] == appointment["serviceduration_in_miutes"]
    assert row["therapist_id"] == uuid.UUID(appointment["TherapistId"])
    assert row["therapist_name"] == appointment["therapist_name"]
    assert row["start_time"] == datetime.fromisoformat(appointment["start_time"])
    assert row["start_time"].tzinfo is None  # centre-local, never shifted
    assert row["room_id"] is None and row["equipment_id"] is None  # "" means none
    assert row["room_name"] is None
    assert row["has_add_ons"] is True and row["is_add_on"] is False
    assert (row["appointment_type"], row["therapist_request_type"]) == (2, 4)
    assert row["progress"] == progress
    assert row["status"] == status
    assert row["last_event_type"] == event_type
    assert row["last_event_at"] is None  # bare body: no event timestamp


def test_broken_sample_page_is_not_json():
    """The Started page as printed (a missing quote) is rejected as parse, saying where."""
    delivery = contract.Delivery(
        "x", 0, "Appointment.Started", samples.printed_body("appointment-started")
    )
    with pytest.raises(errors.NotJson, match="line 25 column 23"):
        envelope.open_delivery(delivery)


def test_quirks_nil_guid_uppercase_and_extra_keys():
    """Uppercase GUIDs load, the nil GUID and the .NET default date mean NULL, unknown keys
    are ignored, 7-digit fractions in event_timestamp load."""
    data = samples.repaired_json("appointment-started")
    appointment = data["appointments"][0]
    appointment["id"] = appointment["id"].upper()
    appointment["TherapistId"] = "00000000-0000-0000-0000-000000000000"
    appointment["end_time"] = "0001-01-01T00:00:00"
    appointment["brand_new_key"] = {"nested": True}
    data["another"] = 1
    body = samples.envelope("Appointment.Started", data, "abc", "2022-03-11T14:22:43.3847049Z")
    [row] = rows(body)
    assert row["appointment_id"] == uuid.UUID(appointment["id"].lower())
    assert row["therapist_id"] is None
    assert row["end_time"] is None
    assert row["last_event_at"] == datetime(2022, 3, 11, 14, 22, 43, 384704, tzinfo=UTC)


def test_schema_error_names_field_and_type_never_value():
    """A bad value is reported by its path and JSON type; the value itself never appears."""
    data = samples.repaired_json("appointment-started")
    data["appointments"][0]["TherapistId"] = "RENU-K-SECRET"
    data["appointments"][0]["serviceduration_in_miutes"] = {"x": "Pavan"}
    with pytest.raises(errors.SchemaMismatch) as caught:
        rows(json.dumps(data).encode(), "Appointment.Started")
    reason = caught.value.reason
    assert "appointments.0.TherapistId: Not a valid GUID (got string)" in reason
    assert "appointments.0.serviceduration_in_miutes" in reason and "(got object)" in reason
    assert "SECRET" not in reason and "Pavan" not in reason


def test_nil_appointment_id_is_a_schema_error():
    """An appointment without a real id can't be keyed: a schema dead letter, not a row."""
    data = samples.repaired_json("appointment-started")
    data["appointments"][0]["id"] = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(errors.SchemaMismatch, match=r"appointments\.0\.id"):
        rows(json.dumps(data).encode(), "Appointment.Started")


@pytest.mark.parametrize(
    ("body", "hint", "error"),
    [
        (b"\xff\xfe not utf-8", "Appointment.Started", errors.NotJson),
        (b"[1, 2]", "Appointment.Started", errors.SchemaMismatch),
        (b'{"appointments": []}', "", errors.UnknownEventType),
        (b'{"event_type": "Appointment.Started", "data": []}', "", errors.SchemaMismatch),
        (b'{"event_type": "x y", "data": {}}', "", errors.SchemaMismatch),
    ],
)
def test_unreadable_bodies_are_rejected_with_a_class(body, hint, error):
    """Each kind of unusable body gets its own failure class, never an unhandled exception."""
    with pytest.raises(error):
        rows(body, hint)


def test_delivery_id_envelope_or_body_hash():
    """The envelope id is the delivery id; without one, the same path and body repeat it."""
    enveloped = samples.envelope("Appointment.Started", {}, "66a26696c7", "2024-01-01T00:00:00Z")
    delivery = contract.Delivery("a", 0, "", enveloped)
    assert envelope.open_delivery(delivery).delivery_id == "66a26696c7"
    bare = samples.repaired_body("appointment-started")
    first = envelope.open_delivery(contract.Delivery("a", 0, "Appointment.Started", bare))
    again = envelope.open_delivery(contract.Delivery("b", 9, "Appointment.Started", bare))
    other = envelope.open_delivery(contract.Delivery("c", 0, "Appointment.Completed", bare))
    assert first.delivery_id == again.delivery_id != other.delivery_id


def test_a_type_nobody_handles_yet_is_kept_without_rows():
    """A new Zenoti event type is no error: it projects to no table, only to the event log."""
    body = samples.envelope(
        "Appointment.Rescheduled", {"id": 7, "center_id": "X"}, "r1", "2024-01-01T00:00:00Z"
    )
    projected = project(body)
    assert (projected.entity_id, projected.center_id, projected.rows) == ("7", None, {})
