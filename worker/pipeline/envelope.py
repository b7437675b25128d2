"""Raw bytes → event type, delivery id, event timestamp and data (envelope, or bare data + hint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from worker.schemas import fields as zf
from zenoti_ingest import contract, errors, snapshots

ENVELOPE_KEYS = frozenset({"event_type", "data"})
_MAX_DELIVERY_ID = 200
_TIMESTAMP = zf.UtcTimestamp(allow_none=True)


@dataclass(frozen=True, slots=True)
class Event:
    """What the envelope (or the URL, for a bare body) says about the delivery."""

    event_type: str
    delivery_id: str
    event_id: str | None
    event_timestamp: datetime | None
    data: dict[str, Any]
    resource: str  # the envelope's event_resource, else the type's leading words


def body_hash(delivery: contract.Delivery) -> str:
    """The delivery id of a body without an envelope: the same body on the same path repeats it
    (per source: two organizations may send the same bytes)."""
    return snapshots.delivery_id(delivery.source, delivery.path_hint, delivery.body)


def open_delivery(delivery: contract.Delivery) -> Event:
    """Parse the body; NotJson, SchemaMismatch or UnknownEventType when it can't be read."""
    try:
        document = json.loads(delivery.body)
    except UnicodeDecodeError:
        raise errors.NotJson("body is not valid UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise errors.NotJson(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise errors.NotJson("body is not usable JSON: nested too deep") from None
    except ValueError:  # an integer with more digits than Python converts
        raise errors.NotJson("body is not usable JSON: a number is too large") from None
    if not isinstance(document, dict):
        raise errors.SchemaMismatch(f"body must be a JSON object, got {errors.json_type(document)}")
    snapshot = snapshots.parse_hint(delivery.path_hint)
    if snapshot is not None:
        return _from_snapshot(document, delivery, *snapshot)
    if document.keys() >= ENVELOPE_KEYS:
        return _from_envelope(document, delivery)
    if delivery.path_hint and not contract.EVENT_TYPE.fullmatch(delivery.path_hint):
        raise errors.UnknownEventType("the URL's event type is not a Zenoti event type name")
    if not delivery.path_hint:
        raise errors.UnknownEventType(
            "body has no envelope (event_type, data) and the URL names no event type: "
            "configure the webhook URL as /webhooks/zenoti/<event type>"
        )
    hint = delivery.path_hint
    return Event(hint, body_hash(delivery), None, None, document, resource_of(hint))


def _from_snapshot(
    document: dict[str, Any], delivery: contract.Delivery, event_type: str, center: Any
) -> Event:
    """A record read from the API (zenoti_ingest/snapshots.py): its event time is when Zenoti
    answered (the delivery's receipt time), and a record that names no center gets the one it
    was read for, so that the projection finds it where a webhook's data has it."""
    data = (
        document
        if center is None or "center_id" in document
        else {
            **document,
            "center_id": str(center),
        }
    )
    received = datetime.fromtimestamp(delivery.received_at_us / 1_000_000, UTC)
    return Event(event_type, body_hash(delivery), None, received, data, resource_of(event_type))


def _from_envelope(document: dict[str, Any], delivery: contract.Delivery) -> Event:
    event_type = document["event_type"]
    if not isinstance(event_type, str) or not contract.EVENT_TYPE.fullmatch(event_type):
        raise errors.SchemaMismatch(
            f"event_type: not a Zenoti event type name (got {errors.json_type(event_type)})"
        )
    data = document["data"]
    if not isinstance(data, dict):
        raise errors.SchemaMismatch(f"data: must be a JSON object, got {errors.json_type(data)}")
    try:
        timestamp = _TIMESTAMP.deserialize(document.get("event_timestamp"))
    except ValidationError:
        raise errors.SchemaMismatch(
            "event_timestamp: not a valid ISO 8601 datetime "
            f"(got {errors.json_type(document.get('event_timestamp'))})"
        ) from None
    return Event(
        event_type=event_type,
        delivery_id=_id_text(document.get("id")) or body_hash(delivery),
        event_id=_id_text(document.get("event_id")),
        event_timestamp=timestamp,
        data=data,
        resource=_resource(document.get("event_resource"), event_type),
    )


def resource_of(event_type: str) -> str:
    """The resource as Zenoti's envelopes name it: the type's first word (Class.Booking.NoShow
    → Class), so bare bodies and enveloped ones agree."""
    return event_type.split(".", 1)[0]


def _resource(declared: Any, event_type: str) -> str:
    if isinstance(declared, str) and contract.EVENT_TYPE.fullmatch(declared):
        return declared
    return resource_of(event_type)


def _id_text(value: Any) -> str | None:
    """An envelope id as text; one Postgres can't store (NUL, huge) is replaced by its hash."""
    if value is None or value == "" or isinstance(value, dict | list | bool):
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    if "\x00" in text or len(text) > _MAX_DELIVERY_ID or not _encodable(text):
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def _encodable(text: str) -> bool:
    """False for text with a lone UTF-16 surrogate (JSON allows "\\ud800"; UTF-8 does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
