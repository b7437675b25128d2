"""Membership.Snapshot: one element of `GET /v1/centers/{id}/members`, onto `guest_memberships`.

The members list names a membership differently from the Guest.Membership.* webhooks (`id`
for `user_membership_id`, `sold_date` for `purchase.date`) and writes its status, recurrence
status and plan type as names ("Frozen", "Recurring") where the webhooks send codes: this
module maps one onto the other (../shared/zenoti/api/README.md, "Guest memberships"). Assumed,
unverified: `id` is the user membership id (the change log calls it that), `end_date` is the
expiry date, `freeze_date` the start of the current freeze, `cancelled_date` the cancel date.

The table's `status` is the list's status as a word (active, frozen, cancelled, expired, ...):
the current state, where the webhooks could only say what their event did. A date the list
gives as null is left as the table has it (a reinstated membership keeps its cancel date, as
after a Reinstate webhook); so are the columns the list does not carry (price, invoice,
next collection, grace period, freeze fee, cancel reason). `credits_amount`, `start_date`,
`closed_date` and the guest's code and name stay in the archived body only.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import memberships, parts

# Membership status and recurrence status (the change log's enum), and plan types.
STATUSES = {
    1: "active",
    2: "inactive",
    3: "frozen",
    4: "cancelled",
    5: "expired",
    6: "closed",
    7: "not_started",
    8: "suspended",
    9: "refund",
    10: "deleted",
    12: "failed",
    -1: "default",
}
TYPES = {-1: "all", 0: "non_recurring", 1: "recurring", 2: "setup"}


@dataclass(frozen=True, slots=True)
class Coded:
    """A value the list may write as a code or as a name: its code (None for a name not in
    the enum) and its word."""

    code: int | None
    word: str


class CodeOrName(zf.Integer):
    """A code, or its name in any spelling ("InActive", "Non Recurring", "not_started");
    loads as Coded. Messages never quote the value."""

    def __init__(self, words: dict[int, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.words = words
        self.codes = {_squash(word): code for code, word in words.items()}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            code = self.codes.get(_squash(value))
            word = self.words[code] if code is not None else _squash(value)
            if not word:
                raise ValidationError("Not a valid code or name.")
            return Coded(code, word)
        code = super()._deserialize(value, attr, data, **kwargs)
        return Coded(code, self.words.get(code, f"status_{code}"))


class RequiredCodeOrName(CodeOrName):
    """A status: missing, null or "" is refused (the table's `status` is never null)."""

    def __init__(self, words: dict[int, str], **kwargs: Any) -> None:
        super().__init__(words, required=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        if loaded is None:
            raise ValidationError("Missing data for required field.")
        return loaded


def _squash(name: str) -> str:
    """A name as lowercase letters and digits only: `InActive`, `in_active` → `inactive`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True, slots=True)
class ListedMember:
    user_membership_id: uuid.UUID
    status: Coded
    center_id: uuid.UUID | None
    guest_id: uuid.UUID | None
    membership_id: uuid.UUID | None
    membership_name: str | None
    membership_type: Coded | None
    recurrence_status: Coded | None
    purchase_date: datetime | None
    expiry_date: datetime | None
    freeze_start_date: datetime | None
    cancel_date: datetime | None


class ListedGuestSchema(parts.Schema):
    guest_id = zf.Guid(data_key="id")  # the guest's code and name are not loaded


class ListedPlanSchema(parts.Schema):
    membership_id = zf.Guid(data_key="id")
    membership_name = zf.Text(data_key="name")
    membership_type = CodeOrName(TYPES, data_key="type")


class ListedMemberSchema(parts.Schema):
    record = ListedMember

    user_membership_id = zf.RequiredGuid(data_key="id")
    status = RequiredCodeOrName(STATUSES)
    center_id = zf.Guid()  # not in the row: the center it was listed for (snapshots.py)
    guest = zf.Flattened(ListedGuestSchema)
    membership = zf.Flattened(ListedPlanSchema)
    recurrence_status = CodeOrName(STATUSES)
    purchase_date = zf.LocalDateTime(data_key="sold_date")
    expiry_date = zf.LocalDateTime(data_key="end_date")
    freeze_start_date = zf.LocalDateTime(data_key="freeze_date")
    cancel_date = zf.LocalDateTime(data_key="cancelled_date")


_CODED = frozenset({"status", "recurrence_status", "membership_type"})


def _project(listed: ListedMember, applied: projection.Applied) -> projection.Projected:
    """The columns the row gives a value (null: left as the table has it), codes as codes."""
    codes = {
        "status_code": listed.status.code,
        "recurrence_status": listed.recurrence_status and listed.recurrence_status.code,
        "membership_type": listed.membership_type and listed.membership_type.code,
    }
    known = {**parts.columns(listed, _CODED), **codes}
    row = {
        **{column: value for column, value in known.items() if value is not None},
        "status": listed.status.word,
        **applied.stamp(),
    }
    return memberships.MEMBERSHIPS.projected(row)


# Built once: schema objects are reused for every record.
LISTED_MEMBER = ListedMemberSchema()

TABLES = ()

HANDLERS = {
    "Membership.Snapshot": projection.Handler(LISTED_MEMBER, _project),
}
