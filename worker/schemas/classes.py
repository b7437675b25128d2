"""Class.Schedule.* (class sessions) and Class.Booking.* (class bookings) events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import parts


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


class ClassSessionSchema(parts.Schema):
    record = ClassSession

    # sic: the samples spell it `sesion_id`; `session_id` is taken too, should Zenoti fix it.
    sesion_id = zf.Text()
    session_id = zf.Text()
    center_id = zf.Guid()
    class_name = zf.Text()
    class_type = zf.Integer()
    start_time = zf.LocalDateTime()
    end_time = zf.LocalDateTime()
    duration_minutes = zf.Integer(data_key="duration_in_mins")
    capacity = zf.Integer()
    web_capacity = zf.Integer()
    show_in_catalog = zf.Boolean()  # sent as 1
    is_free_session = zf.Boolean()
    is_recurring = zf.Boolean()
    recurrence_id = zf.Text()

    def build(self, data: dict[str, Any]) -> ClassSession:
        misspelt, spelt = data.pop("sesion_id"), data.pop("session_id")
        session_id = spelt if misspelt is None else misspelt
        if session_id is None:  # no key, no row
            raise ValidationError("Missing data for required field.", field_name="sesion_id")
        return super().build({**data, "session_id": session_id})


class ClassBookingSchema(parts.Schema):
    record = ClassBooking

    registration_id = zf.RequiredText()
    session_id = zf.Text()
    class_id = zf.Text()
    workshop_id = zf.Text()
    guest_id = zf.Guid()
    center_id = zf.Guid()
    waitlist = zf.Boolean()
    booking_source = zf.Integer()
    group_invoice_id = zf.Guid()
    recurrence_id = zf.Text()


# Built once: schema objects are reused for every event (building one costs more than a load).
CLASS_SESSION = ClassSessionSchema()
CLASS_BOOKING = ClassBookingSchema()


SESSIONS = projection.Table("class_sessions", key="session_id")
BOOKINGS = projection.Table("class_bookings", key="registration_id")
TABLES = (SESSIONS, BOOKINGS)


def _project(table: projection.Table, status: str, deleted: bool = False) -> projection.Projection:
    """Every column, status and deleted_at included (a Deleted event's time; None un-deletes),
    so that the newest event alone decides the row whatever order events arrive in."""

    def project(
        record: ClassSession | ClassBooking, applied: projection.Applied
    ) -> projection.Projected:
        deleted_at = applied.at if deleted else None
        row = {
            **parts.columns(record),
            "status": status,
            "deleted_at": deleted_at,
            **applied.stamp(),
        }
        return table.projected(row)

    return project


def _session(status: str, deleted: bool = False) -> projection.Handler:
    return projection.Handler(CLASS_SESSION, _project(SESSIONS, status, deleted))


def _booking(status: str, deleted: bool = False) -> projection.Handler:
    return projection.Handler(CLASS_BOOKING, _project(BOOKINGS, status, deleted))


HANDLERS = {
    "Class.Schedule.Created": _session("scheduled"),
    "Class.Schedule.Updated": _session("scheduled"),
    "Class.Schedule.Cancelled": _session("cancelled"),
    "Class.Schedule.Deleted": _session("deleted", deleted=True),
    "Class.Booking.Created": _booking("booked"),
    "Class.Booking.Cancelled": _booking("cancelled"),
    "Class.Booking.Deleted": _booking("deleted", deleted=True),
    "Class.Booking.NoShow": _booking("no_show"),
    # Printed only as bare `data`: these two names are guesses, after the ones above.
    "Class.Booking.Approved": _booking("approved"),
    "Class.Booking.Rejected": _booking("rejected"),
}
