"""The table from Zenoti event type to schema and projection: adding an event type is one line
in HANDLERS (plus its schema and its table's migration)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError

from worker import envelope
from worker.schemas import appointments
from zenoti_ingest import errors


@dataclass(frozen=True, slots=True)
class Applied:
    """Where an event came from; stamped on every current-state row it writes."""

    event_type: str
    event_at: datetime | None
    received_at: datetime
    ingest_id: str

    def stamp(self) -> dict[str, Any]:
        return {
            "last_event_type": self.event_type,
            "last_event_at": self.event_at,
            "last_received_at": self.received_at,
            "last_ingest_id": self.ingest_id,
        }


@dataclass(frozen=True, slots=True)
class Projected:
    """What an event writes: its `events` row's entity and center, and current-state rows
    ({table: [{column: value}]}, each row carrying the table's key)."""

    entity_id: str | None
    center_id: uuid.UUID | None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


Projection = Callable[[Any, Applied], Projected]


@dataclass(frozen=True, slots=True)
class Handler:
    schema: Schema
    project: Projection


def _appointments(status: str) -> Projection:
    def project(group: appointments.AppointmentGroupEvent, applied: Applied) -> Projected:
        shared = {
            "appointment_group_id": group.appointment_group_id,
            "invoice_id": group.invoice_id,
            "invoice_number": group.invoice_number,
            "center_id": group.center_id,
            "status": status,
            **applied.stamp(),
        }
        rows = [{**appointments.columns(a), **shared} for a in group.appointments]
        return Projected(_text(group.appointment_group_id), group.center_id,
                         {"appointments": rows})

    return project


HANDLERS: dict[str, Handler] = {
    "Appointment.Started": Handler(appointments.APPOINTMENT_GROUP_EVENT,
                                   _appointments("started")),
    "Appointment.Completed": Handler(appointments.APPOINTMENT_GROUP_EVENT,
                                     _appointments("completed")),
}


def project(event: envelope.Event, applied: Applied) -> Projected:
    """Validate the event's data and project it; SchemaMismatch when it does not fit.

    A type nobody handles yet is kept in `events` only, to be projected by a later reprocess.
    """
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        return Projected(_text(event.data.get("id")), _guid(event.data.get("center_id")))
    try:
        record = handler.schema.load(event.data)
    except ValidationError as exc:
        raise errors.SchemaMismatch(describe(exc.messages, event.data)) from None
    return handler.project(record, applied)


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list | bool) else str(value)


def _guid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


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
