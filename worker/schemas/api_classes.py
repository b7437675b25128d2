"""ClassSession.Snapshot: one element of `GET /v1/classes/sessions`, onto `class_sessions`.

Zenoti documents only the session's `id` (an integer; the Class.Schedule.* webhooks spell it
`sesion_id`); `name`, `start_time`, `end_time`, `capacity`, `center_id` and `session_status`
are read as the fixture has them (unverified), the status by the session-status enum of the
guest-registrations page (0 Active, 1 Cancelled, 2 Upcoming, 3 Inprogress, 4 Completed). The
table's words are the webhooks': a cancelled session is `cancelled`, any other `scheduled`
(the table has no column for progress). A listed session exists: `deleted_at` is cleared.
What the list does not carry (class type, web capacity, catalog, free, recurrence, duration)
is left as the table has it, and so is a value it gives as null.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from worker.pipeline import projection
from worker.schemas import classes, parts
from worker.schemas import fields as zf

CANCELLED = 1
SCHEDULED = frozenset({0, 2, 3, 4})


@dataclass(frozen=True, slots=True)
class ListedSession:
    session_id: str
    center_id: uuid.UUID | None
    class_name: str | None
    start_time: datetime | None
    end_time: datetime | None
    capacity: int | None
    status_code: int | None


class ListedSessionSchema(parts.Schema):
    record = ListedSession

    session_id = zf.RequiredText(data_key="id")  # an integer, kept as text like `sesion_id`
    center_id = zf.Guid()  # in the row; else the center it was read for (snapshots.py)
    class_name = zf.Text(data_key="name")
    start_time = zf.LocalDateTime()  # centre-local, as the webhooks' start_time
    end_time = zf.LocalDateTime()
    capacity = zf.Integer()
    status_code = zf.Integer(data_key="session_status")


def status(code: int | None) -> str:
    """The table's word for a session status code (none: the list holds active sessions)."""
    if code is None or code in SCHEDULED:
        return "scheduled"
    return "cancelled" if code == CANCELLED else f"status_{code}"


def _project(listed: ListedSession, applied: projection.Applied) -> projection.Projected:
    known = parts.columns(listed, frozenset({"status_code"}))
    row = {
        **{column: value for column, value in known.items() if value is not None},
        "status": status(listed.status_code),
        "deleted_at": None,
        **applied.stamp(),
    }
    return classes.SESSIONS.projected(row)


# Built once: schema objects are reused for every record.
LISTED_SESSION = ListedSessionSchema()

TABLES = ()

HANDLERS = {
    "ClassSession.Snapshot": projection.Handler(LISTED_SESSION, _project),
}
