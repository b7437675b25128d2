"""Guest membership events: Created, Freeze, Unfreeze, Cancelled, Reinstate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

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
    "group_user_membership_id": ("group_user_membership_id",),
    "guest_id": ("guest_id",),
    "membership_id": ("membership", "id"),
    "membership_name": ("membership", "name"),
    "membership_type": ("membership", "type"),
    "center_id": ("center", "id"),
    "status_code": ("status",),
    "recurrence_status": ("recurrence_status",),
    "member_code": ("member_code",),
    "invoice_id": ("invoice", "id"),
    "invoice_number": ("invoice", "no"),
    "purchase_date": ("purchase", "date"),
    "price_sales": ("purchase", "price", "sales"),
    "price_tax": ("purchase", "price", "tax"),
    "price_final": ("purchase", "price", "final"),
    "expiry_date": ("expiry_date",),
    "next_collection_date": ("next_collection_date",),
    "grace_period_date": ("grace_period_date",),
    "grace_period_days": ("grace_period_days",),
    "credit_balance": ("credit_balance", "total"),
    "is_refunded": ("is_refunded",),
    "freeze_start_date": ("freeze", "start_date"),
    "freeze_end_date": ("freeze", "end_date"),
    "freeze_fee": ("freeze", "fee"),
    "cancel_initiated_date": ("cancel", "cancel_initiated_date"),
    "cancel_date": ("cancel", "cancel_date"),
    "termination_date": ("cancel", "termination_date"),
    "cancel_reason": ("cancel", "reason"),
}


class _Credit(parts.Part):
    total = zf.Money()


class _Freeze(parts.Part):
    start_date = zf.LocalDateTime(load_default=None)
    end_date = zf.LocalDateTime(load_default=None)
    fee = zf.Money()


class _Cancel(parts.Part):
    cancel_initiated_date = zf.LocalDateTime(load_default=None)
    cancel_date = zf.LocalDateTime(load_default=None)
    termination_date = zf.LocalDateTime(load_default=None)
    reason = zf.Text(load_default=None)


class MembershipSchema(Schema):
    """Every membership event's body (Created's `data`, or the bare body of the others).

    Optional keys have no load_default, so that post_load can tell which ones the body had.
    """

    class Meta:
        unknown = EXCLUDE

    user_membership_id = zf.Guid(required=True, allow_none=False)
    group_user_membership_id = zf.Guid(allow_none=True)
    guest_id = zf.Guid(allow_none=True)
    membership = fields.Nested(parts.Named, allow_none=True)
    center = fields.Nested(parts.Center, allow_none=True)
    status = fields.Integer(allow_none=True)
    recurrence_status = fields.Integer(allow_none=True)
    member_code = zf.Text(allow_none=True)
    invoice = fields.Nested(parts.Invoice, allow_none=True)
    purchase = fields.Nested(parts.Purchase, allow_none=True)
    expiry_date = zf.LocalDateTime(allow_none=True)
    next_collection_date = zf.LocalDateTime(allow_none=True)
    grace_period_date = zf.LocalDateTime(allow_none=True)
    grace_period_days = fields.Integer(allow_none=True)
    credit_balance = fields.Nested(_Credit, allow_none=True)
    is_refunded = fields.Boolean(allow_none=True)
    freeze = fields.Nested(_Freeze, allow_none=True)
    cancel = fields.Nested(_Cancel, allow_none=True)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Membership:
        if data["user_membership_id"] is None:  # the nil GUID is no membership
            raise ValidationError("Not a valid GUID.", field_name="user_membership_id")
        return Membership(
            user_membership_id=data["user_membership_id"],
            carried=frozenset(data),
            **{column: parts.dig(data, path) for column, path in PATHS.items()},
        )


def columns(membership: Membership) -> dict[str, Any]:
    """The `guest_memberships` columns this event carries (see PATHS)."""
    return {
        column: getattr(membership, column)
        for column, path in PATHS.items()
        if path[0] in membership.carried
    }


# Built once: schema objects are reused for every event (building one costs more than a load).
MEMBERSHIP = MembershipSchema()


def _project(status: str, unfreeze: bool | None = None) -> projection.Projection:
    """Status from the event type (Zenoti's `status` stays 1 through freeze and cancel).

    unfreeze: True stamps `unfrozen_at` (Unfreeze: its event time, else receipt time), False
    clears it (Freeze: a new freeze is not lifted yet), None leaves it.
    """

    def project(membership: Membership, applied: projection.Applied) -> projection.Projected:
        row = {
            "user_membership_id": membership.user_membership_id,
            **columns(membership),
            "status": status,
            **applied.stamp(),
        }
        if unfreeze is not None:
            row["unfrozen_at"] = (applied.event_at or applied.received_at) if unfreeze else None
        return projection.Projected(
            projection.text(membership.user_membership_id),
            membership.center_id,
            {"guest_memberships": [row]},
        )

    return project


TABLES = (projection.Table("guest_memberships", key="user_membership_id"),)

# Only Guest.Membership.Created is documented; the others are printed as bare bodies and their
# names are guesses after it (the URL path names them: /webhooks/zenoti/<event type>).
HANDLERS = {
    "Guest.Membership.Created": projection.Handler(MEMBERSHIP, _project("active")),
    "Guest.Membership.Freeze": projection.Handler(MEMBERSHIP, _project("frozen", False)),
    "Guest.Membership.Unfreeze": projection.Handler(MEMBERSHIP, _project("active", True)),
    "Guest.Membership.Cancelled": projection.Handler(MEMBERSHIP, _project("cancelled")),
    "Guest.Membership.Reinstate": projection.Handler(MEMBERSHIP, _project("active")),
}
