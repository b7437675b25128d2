"""Appointment.Snapshot: one element of `GET /v1/appointments`, mapped onto `appointments`.

The API spells the appointment differently from the webhooks (`appointment_id` against `id`,
`therapist.id` against `TherapistId`, `service.name` against `service_name`) and codes its
state in `status` (see ../shared/zenoti/api/README.md): this module maps one onto the other.
What the list does not carry (invoice number and item, duration, recurrence, appointment type)
is left as the table has it; so are room and equipment when the list says null (the invoice of
the same appointment names its room where the list gives null). A block-out row (status 10,
no service) is a therapist's blocked time, not an appointment: it writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.pipeline import projection
from worker.schemas import appointments, parts
from worker.schemas import fields as zf

BLOCK_OUT = 10
# The API's `status` codes (DF, ZA, MD in the API README) as the table's words; the webhooks
# write booked, started, completed and closed.
STATUSES = {
    -2: "no_show",
    -1: "cancelled",
    0: "booked",
    1: "closed",
    2: "checked_in",
    4: "confirmed",
    11: "not_specified",
    20: "available",
    21: "voided",
}
# An open appointment's `progress` says more than its status: the words the webhooks use
# (Appointment.Started sends progress 1, Appointment.Completed 2).
_PROGRESSED = {1: "started", 2: "completed"}
_OPEN = frozenset({0, 2, 4})


@dataclass(frozen=True, slots=True)
class Place:
    id: uuid.UUID | None
    name: str | None


@dataclass(frozen=True, slots=True)
class ListedAppointment:
    """An element of the appointments list, in the `appointments` table's column names."""

    appointment_id: uuid.UUID
    appointment_group_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    center_id: uuid.UUID | None
    service_id: uuid.UUID | None
    service_name: str | None
    has_add_ons: bool | None
    is_add_on: bool | None
    start_time: datetime | None
    end_time: datetime | None
    therapist_id: uuid.UUID | None
    therapist_first_name: str | None
    therapist_last_name: str | None
    room: dict[str, Any] | None
    equipment: dict[str, Any] | None
    status_code: int | None
    progress: int | None


class ServiceSchema(parts.Schema):
    service_id = zf.Guid(data_key="id")
    service_name = zf.Text(data_key="name")
    has_add_ons = zf.Boolean(data_key="has_addons")
    is_add_on = zf.Boolean(data_key="is_addon")


class TherapistSchema(parts.Schema):
    therapist_id = zf.Guid(data_key="id")
    therapist_first_name = zf.Text(data_key="first_name")
    therapist_last_name = zf.Text(data_key="last_name")


class PlaceSchema(parts.Schema):
    """A room or equipment object; its keys are not documented (unverified: id and name)."""

    id = zf.Guid()
    name = zf.Text()


class ListedAppointmentSchema(parts.Schema):
    record = ListedAppointment

    appointment_id = zf.RequiredGuid()
    appointment_group_id = zf.Guid()
    invoice_id = zf.Guid()
    center_id = zf.Guid()  # not in the row: the center it was read for (snapshots.py)
    service = zf.Flattened(ServiceSchema)
    start_time = zf.LocalDateTime()  # centre-local, as the webhooks' start_time
    end_time = zf.LocalDateTime()
    therapist = zf.Flattened(TherapistSchema)
    room = zf.Nested(PlaceSchema)
    equipment = zf.Nested(PlaceSchema)
    status_code = zf.Integer(data_key="status")
    progress = zf.Integer()


def status(code: int | None, progress: int | None) -> str:
    """The table's status word for the API's status code and progress."""
    if code in _OPEN and progress in _PROGRESSED:
        return _PROGRESSED[progress]
    return STATUSES.get(code, f"status_{code}")


def _name(first: str | None, last: str | None) -> str | None:
    """The therapist's name as the webhooks' therapist_name writes it: first and last."""
    return " ".join(part for part in (first, last) if part) or None


def _place(prefix: str, place: dict[str, Any] | None) -> dict[str, Any]:
    return {} if place is None else {f"{prefix}_id": place["id"], f"{prefix}_name": place["name"]}


def _project(listed: ListedAppointment, applied: projection.Applied) -> projection.Projected:
    entity = str(listed.appointment_id)
    if listed.status_code == BLOCK_OUT:
        return projection.Projected(entity, listed.center_id)
    row = {
        "appointment_id": listed.appointment_id,
        "appointment_group_id": listed.appointment_group_id,
        "invoice_id": listed.invoice_id,
        "center_id": listed.center_id,
        "service_id": listed.service_id,
        "service_name": listed.service_name,
        "has_add_ons": listed.has_add_ons,
        "is_add_on": listed.is_add_on,
        "start_time": listed.start_time,
        "end_time": listed.end_time,
        "start_time_in_center": listed.start_time,
        "end_time_in_center": listed.end_time,
        "therapist_id": listed.therapist_id,
        "therapist_name": _name(listed.therapist_first_name, listed.therapist_last_name),
        **_place("room", listed.room),
        **_place("equipment", listed.equipment),
        "progress": listed.progress,
        "status": status(listed.status_code, listed.progress),
        **applied.stamp(),
    }
    return appointments.TABLES[0].projected(row)


# Built once: schema objects are reused for every record.
LISTED_APPOINTMENT = ListedAppointmentSchema()

TABLES = ()

HANDLERS = {
    "Appointment.Snapshot": projection.Handler(LISTED_APPOINTMENT, _project),
}
