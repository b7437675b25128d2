"""AppointmentGroup.Created and AppointmentGroup.Status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from worker.pipeline import projection
from worker.schemas import appointments
from worker.schemas import fields as zf


class YesNo(fields.Boolean):
    """A flag Zenoti may send as "Yes"/"No" (any case) or a JSON boolean; "" and null: None."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            value = value.strip().lower()
        return super()._deserialize(value, attr, data, **kwargs)


@dataclass(frozen=True, slots=True)
class GroupAppointment:
    """An appointment of a group Created event: its `appointments` columns and the
    centre-local times only this event sends."""

    appointment: appointments.Appointment
    start_time_in_center: datetime | None
    end_time_in_center: datetime | None


@dataclass(frozen=True, slots=True)
class GroupCreated:
    """The `data` of AppointmentGroup.Created."""

    appointment_group_id: uuid.UUID
    invoice_id: uuid.UUID | None
    invoice_number: str | None
    invoice_number_prefix: str | None
    center_id: uuid.UUID | None
    guest_id: uuid.UUID | None
    utm_source: str | None
    utm_medium: str | None
    appointments: tuple[GroupAppointment, ...]


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """The `data` of AppointmentGroup.Status."""

    appointment_group_id: uuid.UUID
    invoice_id: uuid.UUID | None
    invoice_number: str | None
    receipt_number: str | None
    status: int | None
    no_show_fee_required: bool | None
    cancellation_fee_required: bool | None


class GroupAppointmentSchema(appointments.AppointmentSchema):
    """The appointment as Started/Completed send it, but spelt the other way."""

    service_duration_minutes = fields.Integer(
        data_key="service_duration_in_minutes", load_default=None, allow_none=True
    )
    therapist_id = zf.Guid(data_key="therapist_id", load_default=None)
    start_time_in_center = zf.LocalDateTime(load_default=None)
    end_time_in_center = zf.LocalDateTime(load_default=None)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> GroupAppointment:
        start, end = data.pop("start_time_in_center"), data.pop("end_time_in_center")
        return GroupAppointment(super()._record(data, **kwargs), start, end)


class _Guest(Schema):
    class Meta:
        unknown = EXCLUDE  # names and email stay in events.data

    guest_id = zf.Guid(data_key="id", load_default=None)


def _group_id() -> zf.Guid:
    return zf.Guid(required=True, allow_none=False)


def _require_group_id(data: dict[str, Any]) -> None:
    if data["appointment_group_id"] is None:  # the nil GUID is no group id
        raise ValidationError("Not a valid GUID.", field_name="appointment_group_id")


class GroupCreatedSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice

    appointment_group_id = _group_id()
    invoice_id = zf.Guid(load_default=None)
    invoice_number = zf.Text(load_default=None)
    invoice_number_prefix = zf.Text(load_default=None)
    center_id = zf.Guid(load_default=None)
    guest = fields.Nested(_Guest, load_default=None, allow_none=True)
    utm_source = zf.Text(load_default=None)
    utm_medium = zf.Text(load_default=None)
    appointments = fields.List(fields.Nested(GroupAppointmentSchema), load_default=list)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> GroupCreated:
        _require_group_id(data)
        guest = data.pop("guest") or {}
        return GroupCreated(
            **{
                **data,
                "guest_id": guest.get("guest_id"),
                "appointments": tuple(data["appointments"]),
            }
        )


class GroupStatusSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    appointment_group_id = _group_id()
    invoice_id = zf.Guid(load_default=None)
    invoice_number = zf.Text(load_default=None)
    receipt_number = zf.Text(load_default=None)  # as sent: "0" in the sample
    status = fields.Integer(data_key="appointment_group_status", load_default=None, allow_none=True)
    no_show_fee_required = YesNo(data_key="is_noshowfeerequired", load_default=None)
    cancellation_fee_required = YesNo(data_key="is_cancellationfeerequired", load_default=None)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> GroupStatus:
        _require_group_id(data)
        return GroupStatus(**data)


# The `appointments` columns a group Created event carries: no appointment_progress (a
# Started/Completed at the same time outranks it) and no equipment_id key in the sample.
_NOT_SENT = frozenset({"progress", "equipment_id"})
# What an appointment is, once its group is created.
BOOKED = "booked"


def _appointment_row(
    item: GroupAppointment, group: GroupCreated, applied: projection.Applied
) -> dict[str, Any]:
    row = {k: v for k, v in appointments.columns(item.appointment).items() if k not in _NOT_SENT}
    return {
        **row,
        "start_time_in_center": item.start_time_in_center,
        "end_time_in_center": item.end_time_in_center,
        "appointment_group_id": group.appointment_group_id,
        "invoice_id": group.invoice_id,
        "invoice_number": group.invoice_number,
        "center_id": group.center_id,
        "status": BOOKED,
        **applied.stamp(),
    }


def _project_created(group: GroupCreated, applied: projection.Applied) -> projection.Projected:
    row = {
        "appointment_group_id": group.appointment_group_id,
        "invoice_id": group.invoice_id,
        "invoice_number": group.invoice_number,
        "invoice_number_prefix": group.invoice_number_prefix,
        "center_id": group.center_id,
        "guest_id": group.guest_id,
        "utm_source": group.utm_source,
        "utm_medium": group.utm_medium,
        **applied.stamp(),
    }
    booked = [_appointment_row(a, group, applied) for a in group.appointments]
    return projection.Projected(
        str(group.appointment_group_id),
        group.center_id,
        {"appointment_groups": [row], "appointments": booked},
    )


def _project_status(group: GroupStatus, applied: projection.Applied) -> projection.Projected:
    row = {name: getattr(group, name) for name in GroupStatus.__slots__}
    return projection.Projected(
        str(group.appointment_group_id), None, {"appointment_groups": [{**row, **applied.stamp()}]}
    )


# Built once: schema objects are reused for every event.
GROUP_CREATED = GroupCreatedSchema()
GROUP_STATUS = GroupStatusSchema()

TABLES = (projection.Table("appointment_groups", key="appointment_group_id"),)

HANDLERS = {
    "AppointmentGroup.Created": projection.Handler(GROUP_CREATED, _project_created),
    "AppointmentGroup.Status": projection.Handler(GROUP_STATUS, _project_status),
}
