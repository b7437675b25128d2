"""Guest.Snapshot: one element of `GET /v1/guests?center_id=&last_updated=`, onto `guests`.

The list's rows are short (id, code, center, names, gender; contact details stay in the
archived body and `events.data`, as for webhooks): those columns are written and `deleted_at`
cleared, since a listed guest exists; the rest is left as the table has it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import guests, parts


@dataclass(frozen=True, slots=True)
class ListedGuest:
    guest_id: uuid.UUID
    code: str | None
    center_id: uuid.UUID | None
    center_name: str | None
    first_name: str | None
    last_name: str | None
    gender: int | None


class ListedPersonalInfoSchema(parts.Schema):
    first_name = zf.Text()
    last_name = zf.Text()
    gender = zf.Integer()


class ListedGuestSchema(parts.Schema):
    record = ListedGuest

    guest_id = zf.RequiredGuid(data_key="id")
    code = zf.Text()
    center_id = zf.Guid()
    center_name = zf.Text()
    personal_info = zf.Flattened(ListedPersonalInfoSchema)


def _project(listed: ListedGuest, applied: projection.Applied) -> projection.Projected:
    row = {**parts.columns(listed), "deleted_at": None, **applied.stamp()}
    return guests.TABLES[0].projected(row)


# Built once: schema objects are reused for every record.
LISTED_GUEST = ListedGuestSchema()

TABLES = ()

HANDLERS = {
    "Guest.Snapshot": projection.Handler(LISTED_GUEST, _project),
}
