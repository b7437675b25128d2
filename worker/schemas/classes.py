"""Class.Schedule.* (class sessions) and Class.Booking.* (class bookings) events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from worker.pipeline import projection
from worker.schemas import fields as zf


@dataclass(frozen=True, slots=True)
class ClassSession:
    """A scheduled class session; column names of the `class_sessions` table."""

    session_id: str
    center_id: uuid.UUID | None
    class_name: str | None
    class_type: int | None
    start_time: datetime | None
    end_time: datetime | None
    duration_minutes: int | None
    capacity: int | None
    web_capacity: int | None
    show_in_catalog: bool | None
    is_free_session: bool | None
    is_recurring: bool | None
    recurrence_id: str | None


@dataclass(frozen=True, slots=True)
class ClassBooking:
    """A guest's registration for a class session; column names of `class_bookings`."""

    registration_id: str
    session_id: str | None
    class_id: str | None
    workshop_id: str | None
    guest_id: uuid.UUID | None
    center_id: uuid.UUID | None
    waitlist: bool | None
    booking_source: int | None
    group_invoice_id: uuid.UUID | None
    recurrence_id: str | None


def _integer() -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True)


def _boolean() -> fields.Boolean:
    return fields.Boolean(load_default=None, allow_none=True)


class ClassSessionSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice

    # sic: the samples spell it `sesion_id`; `session_id` is taken too, should Zenoti fix it.
    sesion_id = zf.Text(load_default=None)
    session_id = zf.Text(load_default=None)
    center_id = zf.Guid(load_default=None)
    class_name = zf.Text(load_default=None)
    class_type = _integer()
    start_time = zf.LocalDateTime(load_default=None)
    end_time = zf.LocalDateTime(load_default=None)
    duration_minutes = fields.Integer(
        data_key="duration_in_mins", load_default=None, allow_none=True
    )
    capacity = _integer()
    web_capacity = _integer()
    show_in_catalog = _boolean()  # sent as 1
    is_free_session = _boolean()
    is_recurring = _boolean()
    recurrence_id = zf.Text(load_default=None)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> ClassSession:
        misspelt, spelt = data.pop("sesion_id"), data.pop("session_id")
        session_id = spelt if misspelt is None else misspelt
        if session_id is None:  # no key, no row
            raise ValidationError("Missing data for required field.", field_name="sesion_id")
        return ClassSession(session_id=session_id, **data)


class ClassBookingSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    registration_id = zf.Text(required=True)
    session_id = zf.Text(load_default=None)
    class_id = zf.Text(load_default=None)
    workshop_id = zf.Text(load_default=None)
    guest_id = zf.Guid(load_default=None)
    center_id = zf.Guid(load_default=None)
    waitlist = _boolean()
    booking_source = _integer()
    group_invoice_id = zf.Guid(load_default=None)
    recurrence_id = zf.Text(load_default=None)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> ClassBooking:
        if data["registration_id"] is None:  # "" is no registration id
            raise ValidationError("Missing data for required field.", field_name="registration_id")
        return ClassBooking(**data)


# Built once: schema objects are reused for every event (building one costs more than a load).
CLASS_SESSION = ClassSessionSchema()
CLASS_BOOKING = ClassBookingSchema()


def _deleted_at(deleted: bool, applied: projection.Applied) -> datetime | None:
    """A Deleted event's time (receipt time for a bare body); None un-deletes."""
    return (applied.event_at or applied.received_at) if deleted else None


def _columns(record: ClassSession | ClassBooking) -> dict[str, Any]:
    return {name: getattr(record, name) for name in type(record).__slots__}


def _session(status: str, deleted: bool = False) -> projection.Projection:
    def project(session: ClassSession, applied: projection.Applied) -> projection.Projected:
        row = {
            **_columns(session),
            "status": status,
            "deleted_at": _deleted_at(deleted, applied),
            **applied.stamp(),
        }
        return projection.Projected(
            session.session_id, session.center_id, {"class_sessions": [row]}
        )

    return project


def _booking(status: str, deleted: bool = False) -> projection.Projection:
    def project(booking: ClassBooking, applied: projection.Applied) -> projection.Projected:
        row = {
            **_columns(booking),
            "status": status,
            "deleted_at": _deleted_at(deleted, applied),
            **applied.stamp(),
        }
        return projection.Projected(
            booking.registration_id, booking.center_id, {"class_bookings": [row]}
        )

    return project


TABLES = (
    projection.Table("class_sessions", key="session_id"),
    projection.Table("class_bookings", key="registration_id"),
)

# Every event writes every column (status and deleted_at included), so that the newest event
# alone decides the row whatever order they arrive in.
HANDLERS = {
    "Class.Schedule.Created": projection.Handler(CLASS_SESSION, _session("scheduled")),
    "Class.Schedule.Updated": projection.Handler(CLASS_SESSION, _session("scheduled")),
    "Class.Schedule.Cancelled": projection.Handler(CLASS_SESSION, _session("cancelled")),
    "Class.Schedule.Deleted": projection.Handler(CLASS_SESSION, _session("deleted", True)),
    "Class.Booking.Created": projection.Handler(CLASS_BOOKING, _booking("booked")),
    "Class.Booking.Cancelled": projection.Handler(CLASS_BOOKING, _booking("cancelled")),
    "Class.Booking.Deleted": projection.Handler(CLASS_BOOKING, _booking("deleted", True)),
    "Class.Booking.NoShow": projection.Handler(CLASS_BOOKING, _booking("no_show")),
    # Printed only as bare `data`: these two names are guesses, after the ones above.
    "Class.Booking.Approved": projection.Handler(CLASS_BOOKING, _booking("approved")),
    "Class.Booking.Rejected": projection.Handler(CLASS_BOOKING, _booking("rejected")),
}
