"""AppointmentGroup.Created and AppointmentGroup.Status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.pipeline import projection
from worker.schemas import appointments, parts
from worker.schemas import fields as zf


class YesNo(zf.Boolean):
    """A flag Zenoti may send as "Yes"/"No" (any case) or a JSON boolean; "" and null: None."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            value = value.strip().lower()
        return super()._deserialize(value, attr, data, **kwargs)


@dataclass(frozen=True, slots=True)
class GroupAppointment(appointments.Appointment):
    """An appointment of a group Created event: its `appointments` columns, with the
    centre-local times only this event sends."""

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

    record = GroupAppointment

    service_duration_minutes = zf.Integer(data_key="service_duration_in_minutes")
    therapist_id = zf.Guid(data_key="therapist_id")
    start_time_in_center = zf.LocalDateTime()
    end_time_in_center = zf.LocalDateTime()


class GroupCreatedSchema(parts.Schema):
    record = GroupCreated

    appointment_group_id = zf.RequiredGuid()
    invoice_id = zf.Guid()
    invoice_number = zf.Text()
    invoice_number_prefix = zf.Text()
    center_id = zf.Guid()
    guest = zf.Flattened(parts.Guest)
    utm_source = zf.Text()
    utm_medium = zf.Text()
    appointments = zf.Many(GroupAppointmentSchema)


class GroupStatusSchema(parts.Schema):
    record = GroupStatus

    appointment_group_id = zf.RequiredGuid()
    invoice_id = zf.Guid()
    invoice_number = zf.Text()
    receipt_number = zf.Text()  # as sent: "0" in the sample
    status = zf.Integer(data_key="appointment_group_status")
    no_show_fee_required = YesNo(data_key="is_noshowfeerequired")
    cancellation_fee_required = YesNo(data_key="is_cancellationfeerequired")


GROUPS = projection.Table("appointment_groups", key="appointment_group_id")

# The `appointments` columns a group Created event carries: no appointment_progress (a
# Started/Completed at the same time outranks it) and no equipment_id key in the sample.
_NOT_SENT = frozenset({"progress", "equipment_id"})
# What an appointment is, once its group is created.
BOOKED = "booked"


def _project_created(group: GroupCreated, applied: projection.Applied) -> projection.Projected:
    row = {**parts.columns(group, leave=frozenset({"appointments"})), **applied.stamp()}
    booked = [appointments.row(a, group, BOOKED, applied, _NOT_SENT) for a in group.appointments]
    return projection.Projected(
        str(group.appointment_group_id),
        group.center_id,
        {"appointment_groups": [row], "appointments": booked},
    )


def _project_status(group: GroupStatus, applied: projection.Applied) -> projection.Projected:
    return GROUPS.projected({**parts.columns(group), **applied.stamp()})  # no center_id


# Built once: schema objects are reused for every event.
GROUP_CREATED = GroupCreatedSchema()
GROUP_STATUS = GroupStatusSchema()

TABLES = (GROUPS,)

HANDLERS = {
    "AppointmentGroup.Created": projection.Handler(GROUP_CREATED, _project_created),
    "AppointmentGroup.Status": projection.Handler(GROUP_STATUS, _project_status),
}
