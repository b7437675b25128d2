"""Guest membership events: Created, Freeze, Unfreeze, Cancelled, Reinstate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import parts


@dataclass(frozen=True, slots=True)
class Membership:
    """A guest's membership as one event describes it; column names of `guest_memberships`.

    `carried` names the top-level keys the body had: the events differ (only Created has
    guest_id and the price, only Freeze the freeze, ...), and a column whose key is absent is
    left as the table has it rather than blanked.
    """

    user_membership_id: uuid.UUID
    carried: frozenset[str]
    group_user_membership_id: uuid.UUID | None = None
    guest_id: uuid.UUID | None = None
    membership_id: uuid.UUID | None = None
    membership_name: str | None = None
    membership_type: int | None = None
    center_id: uuid.UUID | None = None
    status_code: int | None = None
    recurrence_status: int | None = None
    member_code: str | None = None
    invoice_id: uuid.UUID | None = None
    invoice_number: str | None = None
    purchase_date: datetime | None = None
    price_sales: Decimal | None = None
    price_tax: Decimal | None = None
    price_final: Decimal | None = None
    expiry_date: datetime | None = None
    next_collection_date: datetime | None = None
    grace_period_date: datetime | None = None
    grace_period_days: int | None = None
    credit_balance: Decimal | None = None
    is_refunded: bool | None = None
    freeze_start_date: datetime | None = None
    freeze_end_date: datetime | None = None
    freeze_fee: Decimal | None = None
    cancel_initiated_date: datetime | None = None
    cancel_date: datetime | None = None
    termination_date: datetime | None = None
    cancel_reason: str | None = None


# Column → where it is in the body. A column is projected only when the body has the first key.
PATHS: dict[str, tuple[str, ...]] = {
    "user_membership_id": ("user_membership_id",),
    "group_user_membership_id": ("group_user_membership_id",),
    **parts.GuestPlan.paths,
    "membership_id": ("membership", "id"),
    "membership_name": ("membership", "name"),
    "membership_type": ("membership", "type"),
    "recurrence_status": ("recurrence_status",),
    "member_code": ("member_code",),
    "expiry_date": ("expiry_date",),
    "next_collection_date": ("next_collection_date",),
    "grace_period_date": ("grace_period_date",),
    "grace_period_days": ("grace_period_days",),
    "credit_balance": ("credit_balance", "total"),
    "freeze_start_date": ("freeze", "start_date"),
    "freeze_end_date": ("freeze", "end_date"),
    "freeze_fee": ("freeze", "fee"),
    "cancel_initiated_date": ("cancel", "cancel_initiated_date"),
    "cancel_date": ("cancel", "cancel_date"),
    "termination_date": ("cancel", "termination_date"),
    "cancel_reason": ("cancel", "reason"),
}


class _Credit(parts.Schema):
    total = zf.Money()


class _Freeze(parts.Schema):
    start_date = zf.LocalDateTime()
    end_date = zf.LocalDateTime()
    fee = zf.Money()


class _Cancel(parts.Schema):
    cancel_initiated_date = zf.LocalDateTime()
    cancel_date = zf.LocalDateTime()
    termination_date = zf.LocalDateTime()
    reason = zf.Text()


class MembershipSchema(parts.GuestPlan):
    """Every membership event's body (Created's `data`, or the bare body of the others)."""

    record = Membership
    paths = PATHS

    user_membership_id = zf.RequiredGuid()
    group_user_membership_id = zf.Guid()
    membership = zf.Nested(parts.Named)
    recurrence_status = zf.Integer()
    member_code = zf.Text()
    expiry_date = zf.LocalDateTime()
    next_collection_date = zf.LocalDateTime()
    grace_period_date = zf.LocalDateTime()
    grace_period_days = zf.Integer()
    credit_balance = zf.Nested(_Credit)
    freeze = zf.Nested(_Freeze)
    cancel = zf.Nested(_Cancel)


# Built once: schema objects are reused for every event (building one costs more than a load).
MEMBERSHIP = MembershipSchema()


def _project(status: str, unfreeze: bool | None = None) -> projection.Projection:
    """Status from the event type (Zenoti's `status` stays 1 through freeze and cancel).

    unfreeze: True stamps `unfrozen_at` (Unfreeze: its event time, else receipt time), False
    clears it (Freeze: a new freeze is not lifted yet), None leaves it.
    """

    def project(membership: Membership, applied: projection.Applied) -> projection.Projected:
        row = {**MEMBERSHIP.columns(membership), "status": status, **applied.stamp()}
        if unfreeze is not None:
            row["unfrozen_at"] = applied.at if unfreeze else None
        return MEMBERSHIPS.projected(row)

    return project


MEMBERSHIPS = projection.Table("guest_memberships", key="user_membership_id")
TABLES = (MEMBERSHIPS,)

# Only Guest.Membership.Created is documented; the others are printed as bare bodies and their
# names are guesses after it (the URL path names them: /webhooks/zenoti/<event type>).
HANDLERS = {
    "Guest.Membership.Created": projection.Handler(MEMBERSHIP, _project("active")),
    "Guest.Membership.Freeze": projection.Handler(MEMBERSHIP, _project("frozen", False)),
    "Guest.Membership.Unfreeze": projection.Handler(MEMBERSHIP, _project("active", True)),
    "Guest.Membership.Cancelled": projection.Handler(MEMBERSHIP, _project("cancelled")),
    "Guest.Membership.Reinstate": projection.Handler(MEMBERSHIP, _project("active")),
}
