"""API snapshot deliveries: how a record read from Zenoti's REST API travels as a delivery.

The backfill (producer) and the worker (consumer) agree here, as the ingress and the worker
agree in contract.py. A record enters as one delivery whose body is the record's exact bytes,
with no envelope; its path hint says what it is and, for a list read per center, which center
it was read for (the API's appointment rows do not name their center):

    Appointment.Snapshot                       Invoice.Snapshot.C<center id, 32 hex digits>

so the hint stays an event type name (archived with the delivery, kept by replay). The event
type is the first two words (`Appointment.Snapshot`). The delivery's `received_at_us` is when
Zenoti answered (its `Date` header, or the request time without one): the worker takes it as
the event time, so that newest-wins orders the snapshot against webhook events.
"""

from __future__ import annotations

import hashlib
import uuid

SNAPSHOT = "Snapshot"
_CENTER_MARK = "C"


def path_hint(resource: str, center_id: str | None = None) -> str:
    """The path hint of a record of `resource` (Appointment, Invoice, Membership, ...) read
    for `center_id`."""
    hint = f"{resource}.{SNAPSHOT}"
    return f"{hint}.{_CENTER_MARK}{uuid.UUID(center_id).hex}" if center_id else hint


def parse_hint(hint: str) -> tuple[str, uuid.UUID | None] | None:
    """(event type, center) of a snapshot's path hint; None when the hint is not one."""
    words = hint.split(".")
    if len(words) not in (2, 3) or words[1] != SNAPSHOT:
        return None
    if len(words) == 2:
        return hint, None
    mark = words[2]
    if not mark.startswith(_CENTER_MARK):
        return None
    try:
        return f"{words[0]}.{SNAPSHOT}", uuid.UUID(hex=mark[1:])
    except ValueError:
        return None


def delivery_id(source: str, path_hint: str, body: bytes) -> str:
    """The delivery id of a body without an envelope: the same body on the same path (per
    source) repeats it. For a snapshot: an unchanged record read again is a duplicate, a
    changed one a new delivery."""
    digest = hashlib.sha256(f"{source}\n{path_hint}\n".encode())
    digest.update(body)
    return "sha256:" + digest.hexdigest()
