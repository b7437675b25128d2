"""Appointment.Started and Appointment.Completed: the `data` object and its appointments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

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


class AppointmentSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice

    appointment_id = zf.Guid(data_key="id", required=True, allow_none=False)
    invoice_item_id = zf.Guid(load_default=None)
    service_id = zf.Guid(load_default=None)
    service_name = zf.Text(load_default=None)
    start_time = zf.LocalDateTime(load_default=None)
    end_time = zf.LocalDateTime(load_default=None)
    # sic: the payload misspells the key
    service_duration_minutes = fields.Integer(
        data_key="serviceduration_in_miutes", load_default=None, allow_none=True
    )
    has_add_ons = fields.Boolean(load_default=None, allow_none=True)
    is_add_on = fields.Boolean(load_default=None, allow_none=True)
    therapist_id = zf.Guid(data_key="TherapistId", load_default=None)  # sic: CamelCase
    therapist_name = zf.Text(load_default=None)
    is_recurring = fields.Boolean(load_default=None, allow_none=True)
    appointment_type = fields.Integer(load_default=None, allow_none=True)
    therapist_request_type = fields.Integer(load_default=None, allow_none=True)
    room_id = zf.Guid(load_default=None)
    room_name = zf.Text(load_default=None)
    equipment_id = zf.Guid(load_default=None)
    equipment_name = zf.Text(load_default=None)
    progress = fields.Integer(data_key="appointment_progress", load_default=None, allow_none=True)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Appointment:
        if data["appointment_id"] is None:  # the nil GUID is no appointment id
            raise ValidationError("Not a valid GUID.", field_name="id")
        return Appointment(**data)


class AppointmentGroupEventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    invoice_id = zf.Guid(load_default=None)
    invoice_number = zf.Text(load_default=None)
    appointment_group_id = zf.Guid(load_default=None)
    center_id = zf.Guid(load_default=None)
    appointments = fields.List(fields.Nested(AppointmentSchema), required=True)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> AppointmentGroupEvent:
        return AppointmentGroupEvent(**{**data, "appointments": tuple(data["appointments"])})


def columns(appointment: Appointment) -> dict[str, Any]:
    """An appointment's fields as `appointments` columns."""
    return parts.values(appointment)


# Built once: schema objects are reused for every event (building one costs more than a load).
APPOINTMENT_GROUP_EVENT = AppointmentGroupEventSchema()


def _project(status: str) -> projection.Projection:
    def project(group: AppointmentGroupEvent, applied: projection.Applied) -> projection.Projected:
        shared = {
            "appointment_group_id": group.appointment_group_id,
            "invoice_id": group.invoice_id,
            "invoice_number": group.invoice_number,
            "center_id": group.center_id,
            "status": status,
            **applied.stamp(),
        }
        rows = [{**columns(a), **shared} for a in group.appointments]
        return projection.Projected(
            projection.text(group.appointment_group_id), group.center_id, {"appointments": rows}
        )

    return project


TABLES = (projection.Table("appointments", key="appointment_id", rank="progress"),)

HANDLERS = {
    "Appointment.Started": projection.Handler(APPOINTMENT_GROUP_EVENT, _project("started")),
    "Appointment.Completed": projection.Handler(APPOINTMENT_GROUP_EVENT, _project("completed")),
}
