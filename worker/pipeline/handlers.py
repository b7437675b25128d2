"""The event-type registry: from Zenoti event type to schema and projection, gathered from
the resource modules (worker/schemas/<resource>.py, each declaring its TABLES and HANDLERS
with worker/pipeline/projection.py; see the README's "Adding an event type").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marshmallow import ValidationError

from worker.pipeline import envelope, projection
from worker.schemas import (
    api_appointments,
    api_classes,
    api_employees,
    api_guests,
    api_memberships,
    api_packages,
    appointment_groups,
    appointments,
    classes,
    employees,
    guests,
    invoices,
    memberships,
    packages,
)
from zenoti_ingest import errors, logs

log = logs.get_logger(__name__)

# Every resource module, each with its TABLES and its HANDLERS (event type → schema, projection).
RESOURCES = (
    appointments,
    api_appointments,
    appointment_groups,
    invoices,
    guests,
    api_guests,
    employees,
    api_employees,
    classes,
    api_classes,
    memberships,
    api_memberships,
    packages,
    api_packages,
)

HANDLERS: dict[str, projection.Handler] = {
    event_type: handler for module in RESOURCES for event_type, handler in module.HANDLERS.items()
}
TABLES: dict[str, projection.Table] = {
    table.name: table for module in RESOURCES for table in module.TABLES
}
# An event type or a table declared by two modules would silently lose one declaration.
assert len(HANDLERS) == sum(len(m.HANDLERS) for m in RESOURCES), "an event type declared twice"
assert len(TABLES) == sum(len(m.TABLES) for m in RESOURCES), "a table declared twice"


def project(event: envelope.Event, applied: projection.Applied) -> projection.Projected:
    """Validate the event's data and project it; SchemaMismatch when it does not fit.

    A type nobody handles yet is kept in `events` only, to be projected by a later reprocess.
    """
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        log.info("event_unhandled", event_type=event.event_type, ingest_id=applied.ingest_id)
        return projection.Projected(
            projection.text(event.data.get("id")), projection.guid(event.data.get("center_id"))
        )
    try:
        record = handler.schema.load(event.data)
    except ValidationError as exc:
        raise errors.SchemaMismatch(describe(exc.messages, event.data)) from None
    return handler.project(record, applied)


_MISSING = object()


def describe(messages: Any, data: Any, limit: int = 5) -> str:
    """Marshmallow's messages as `path: problem (got type)`, never quoting a value."""
    problems = []
    for path, message in _flatten(messages, ()):
        value = _lookup(data, path)
        got = "missing" if value is _MISSING else errors.json_type(value)
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
