"""Appointment.Started and Appointment.Completed: the `data` object and its appointments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import parts


@dataclass(frozen=True, slots=True)
class Appointment:
    """One appointment as Zenoti describes it; column names of the `appointments` table."""

    appointment_id: uuid.UUID
    invoice_item_id: uuid.UUID | None
    service_id: uuid.UUID | None
    service_name: str | None
    start_time: datetime | None
    end_time: datetime | None
    service_duration_minutes: int | None
    has_add_ons: bool | None
    is_add_on: bool | None
    therapist_id: uuid.UUID | None
    therapist_name: str | None
    is_recurring: bool | None
    appointment_type: int | None
    therapist_request_type: int | None
    room_id: uuid.UUID | None
    room_name: str | None
    equipment_id: uuid.UUID | None
    equipment_name: str | None
    progress: int | None


@dataclass(frozen=True, slots=True)
class AppointmentGroupEvent:
    """The `data` of an appointment event: the group, its invoice, and its appointments."""

    invoice_id: uuid.UUID | None
    invoice_number: str | None
    appointment_group_id: uuid.UUID | None
    center_id: uuid.UUID | None
    appointments: tuple[Appointment, ...]


class AppointmentSchema(parts.Schema):
    record = Appointment

    appointment_id = zf.RequiredGuid(data_key="id")
    invoice_item_id = zf.Guid()
    service_id = zf.Guid()
    service_name = zf.Text()
    start_time = zf.LocalDateTime()
    end_time = zf.LocalDateTime()
    service_duration_minutes = zf.Integer(data_key="serviceduration_in_miutes")  # sic: misspelt
    has_add_ons = zf.Boolean()
    is_add_on = zf.Boolean()
    therapist_id = zf.Guid(data_key="TherapistId")  # sic: CamelCase
    therapist_name = zf.Text()
    is_recurring = zf.Boolean()
    appointment_type = zf.Integer()
    therapist_request_type = zf.Integer()
    room_id = zf.Guid()
    room_name = zf.Text()
    equipment_id = zf.Guid()
    equipment_name = zf.Text()
    progress = zf.Integer(data_key="appointment_progress")


class AppointmentGroupEventSchema(parts.Schema):
    record = AppointmentGroupEvent

    invoice_id = zf.Guid()
    invoice_number = zf.Text()
    appointment_group_id = zf.Guid()
    center_id = zf.Guid()
    appointments = zf.Many(AppointmentSchema, required=True)


def row(
    appointment: Appointment,
    owner: Any,
    status: str,
    applied: projection.Applied,
    leave: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """An `appointments` row: the appointment's columns but those in `leave` (what its event
    does not send), the ids of its `owner` (the group or invoice that lists it), and status."""
    return {
        **parts.columns(appointment, leave),
        "appointment_group_id": owner.appointment_group_id,
        "invoice_id": owner.invoice_id,
        "invoice_number": owner.invoice_number,
        "center_id": owner.center_id,
        "status": status,
        **applied.stamp(),
    }


# Built once: schema objects are reused for every event (building one costs more than a load).
APPOINTMENT_GROUP_EVENT = AppointmentGroupEventSchema()


def _project(status: str) -> projection.Projection:
    def project(group: AppointmentGroupEvent, applied: projection.Applied) -> projection.Projected:
        rows = [row(a, group, status, applied) for a in group.appointments]
        return projection.Projected(
            projection.text(group.appointment_group_id), group.center_id, {"appointments": rows}
        )

    return project


TABLES = (projection.Table("appointments", key="appointment_id", rank="progress"),)

HANDLERS = {
    "Appointment.Started": projection.Handler(APPOINTMENT_GROUP_EVENT, _project("started")),
    "Appointment.Completed": projection.Handler(APPOINTMENT_GROUP_EVENT, _project("completed")),
}
