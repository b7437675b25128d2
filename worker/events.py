"""The table from Zenoti event type to what it writes: adding an event type is one line here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError

from worker import envelope
from worker.schemas import appointments
from zenoti_ingest import contract, errors


@dataclass(frozen=True, slots=True)
class Applied:
    """Where a delivery's event came from, stamped on every row it writes."""

    event_type: str
    event_at: datetime | None
    received_at: datetime
    ingest_id: str


# A projection turns a validated event into rows: {table: [row, ...]}; a row is {column: value}.
Rows = dict[str, list[dict[str, Any]]]
Projection = Callable[[Any, Applied], Rows]


def _appointments(status: str) -> Projection:
    def project(group: appointments.AppointmentGroupEvent, applied: Applied) -> Rows:
        shared = {
            "appointment_group_id": group.appointment_group_id,
            "invoice_id": group.invoice_id,
            "invoice_number": group.invoice_number,
            "center_id": group.center_id,
            "status": status,
            "last_event_type": applied.event_type,
            "last_event_at": applied.event_at,
            "last_received_at": applied.received_at,
            "last_ingest_id": applied.ingest_id,
        }
        return {
            "appointments": [
                {**{name: getattr(a, name) for name in a.__slots__}, **shared}
                for a in group.appointments
            ]
        }

    return project


@dataclass(frozen=True, slots=True)
class Handler:
    schema: Schema
    project: Projection


HANDLERS: dict[str, Handler] = {
    "Appointment.Started": Handler(
        appointments.APPOINTMENT_GROUP_EVENT, _appointments("started")
    ),
    "Appointment.Completed": Handler(
        appointments.APPOINTMENT_GROUP_EVENT, _appointments("completed")
    ),
}


def rows_for(event: envelope.Event, delivery: contract.Delivery, received_at: datetime) -> Rows:
    """Validate the event's data and project it into rows; DeliveryRejected when it can't."""
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        raise errors.UnknownEventType(
            f"no handler for event type {event.event_type!r}; handled: {', '.join(HANDLERS)}"
        )
    try:
        record = handler.schema.load(event.data)
    except ValidationError as exc:
        raise errors.SchemaMismatch(describe(exc.messages, event.data)) from None
    applied = Applied(event.event_type, event.event_timestamp, received_at, delivery.ingest_id)
    return handler.project(record, applied)


_MISSING = object()


def describe(messages: Any, data: Any, limit: int = 5) -> str:
    """Marshmallow's messages as `path: problem (got type)`, never quoting a value."""
    problems = []
    for path, message in _flatten(messages, ()):
        value = _lookup(data, path)
        got = "missing" if value is _MISSING else envelope.json_type(value)
        where = ".".join(str(p) for p in path) or "data"
        problems.append(f"{where}: {message.rstrip('.')} (got {got})")
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def _flatten(messages: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(messages, dict):
        for key, inner in messages.items():
            yield from _flatten(inner, path if key == "_schema" else (*path, key))
    elif isinstance(messages, list):
        for message in messages:
            yield from _flatten(message, path)
    else:
        yield path, str(messages)


def _lookup(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        in_dict = isinstance(data, dict) and key in data
        in_list = isinstance(data, list) and isinstance(key, int) and key < len(data)
        if in_dict or in_list:
            data = data[key]
        else:
            return _MISSING
    return data
