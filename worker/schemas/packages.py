"""Guest package events: Creation, Redemption, Redemption Reversal, Status and Validity Update."""

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
class Package:
    """A guest's package as one event describes it; column names of `guest_packages`.

    `carried` names the top-level keys the body had: a column whose key is absent (only
    Creation shows the per-service balances) is left as the table has it, not blanked.
    """

    user_package_id: uuid.UUID
    carried: frozenset[str]
    guest_id: uuid.UUID | None = None
    package_id: uuid.UUID | None = None
    package_name: str | None = None
    package_type: int | None = None
    center_id: uuid.UUID | None = None
    status_code: int | None = None
    package_state: int | None = None
    invoice_id: uuid.UUID | None = None
    invoice_number: str | None = None
    purchase_date: datetime | None = None
    price_sales: Decimal | None = None
    price_tax: Decimal | None = None
    price_final: Decimal | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    end_date_with_grace: datetime | None = None
    never_expires: bool | None = None
    expiration_days: int | None = None
    start_validity_at_first_redemption: bool | None = None
    has_first_redemption: bool | None = None
    completed_schedules: int | None = None
    next_schedule_date: datetime | None = None
    is_refunded: bool | None = None
    services_total: int | None = None
    services_used: int | None = None
    services_balance: int | None = None
    balance_amount: Decimal | None = None


# Column → where it is in the body. A column is projected only when the body has the first key.
PATHS: dict[str, tuple[str, ...]] = {
    "guest_id": ("guest_id",),  # in no sample: kept should a real body carry it
    "package_id": ("package", "id"),
    "package_name": ("package", "name"),
    "package_type": ("package", "type"),
    "center_id": ("center", "id"),
    "status_code": ("status",),
    "package_state": ("user_package_state",),
    "invoice_id": ("invoice", "id"),
    "invoice_number": ("invoice", "no"),
    "purchase_date": ("purchase", "date"),
    "price_sales": ("purchase", "price", "sales"),
    "price_tax": ("purchase", "price", "tax"),
    "price_final": ("purchase", "price", "final"),
    "start_date": ("date", "start"),
    "end_date": ("date", "end"),
    "end_date_with_grace": ("date", "end_date_with_grace"),
    "never_expires": ("never_expires",),
    "expiration_days": ("expiration_days",),
    "start_validity_at_first_redemption": ("start_validity_at_first_redemption",),
    "has_first_redemption": ("has_first_redemption",),
    "completed_schedules": ("schedule", "completed_schedules"),
    "next_schedule_date": ("schedule", "next_schedule_date"),
    "is_refunded": ("is_refunded",),
    # Sums over the package's services (sessions, and the value left to redeem).
    "services_total": ("services", "total"),
    "services_used": ("services", "used"),
    "services_balance": ("services", "balance"),
    "balance_amount": ("services", "balance_amount"),
}


class _Validity(parts.Part):
    start = zf.LocalDateTime(load_default=None)
    end = zf.LocalDateTime(load_default=None)
    end_date_with_grace = zf.LocalDateTime(load_default=None)


class _Schedule(parts.Part):
    completed_schedules = fields.Integer(load_default=None, allow_none=True)
    next_schedule_date = zf.LocalDateTime(load_default=None)


class _ServiceBalance(parts.Part):
    total = fields.Integer(load_default=None, allow_none=True)
    used = fields.Integer(load_default=None, allow_none=True)
    balance = fields.Integer(load_default=None, allow_none=True)
    balance_amount = zf.Money()


class PackageSchema(Schema):
    """Every package event's bare body; optional keys have no load_default, so that post_load
    can tell which ones the body had."""

    class Meta:
        unknown = EXCLUDE

    user_package_id = zf.Guid(required=True, allow_none=False)
    guest_id = zf.Guid(allow_none=True)
    package = fields.Nested(parts.Named, allow_none=True)
    center = fields.Nested(parts.Center, allow_none=True)
    status = fields.Integer(allow_none=True)
    user_package_state = fields.Integer(allow_none=True)
    invoice = fields.Nested(parts.Invoice, allow_none=True)
    purchase = fields.Nested(parts.Purchase, allow_none=True)
    date = fields.Nested(_Validity, allow_none=True)
    never_expires = fields.Boolean(allow_none=True)
    expiration_days = fields.Integer(allow_none=True)
    start_validity_at_first_redemption = fields.Boolean(allow_none=True)
    has_first_redemption = fields.Boolean(allow_none=True)
    schedule = fields.Nested(_Schedule, allow_none=True)
    is_refunded = fields.Boolean(allow_none=True)
    services = fields.List(fields.Nested(_ServiceBalance), allow_none=True)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Package:
        if data["user_package_id"] is None:  # the nil GUID is no package
            raise ValidationError("Not a valid GUID.", field_name="user_package_id")
        if data.get("services") is not None:
            data = {**data, "services": _sums(data["services"])}
        return Package(
            user_package_id=data["user_package_id"],
            carried=frozenset(data),
            **{column: parts.dig(data, path) for column, path in PATHS.items()},
        )


def _sums(services: list[dict[str, Any]]) -> dict[str, Any]:
    """Each counter summed over the services that state it; None where none does."""
    sums = {}
    for counter in ("total", "used", "balance", "balance_amount"):
        values = [s[counter] for s in services if s[counter] is not None]
        sums[counter] = sum(values) if values else None
    return sums


def columns(package: Package) -> dict[str, Any]:
    """The `guest_packages` columns this event carries (see PATHS)."""
    return {
        column: getattr(package, column)
        for column, path in PATHS.items()
        if path[0] in package.carried
    }


# Built once: schema objects are reused for every event (building one costs more than a load).
PACKAGE = PackageSchema()


def _project(package: Package, applied: projection.Applied) -> projection.Projected:
    row = {"user_package_id": package.user_package_id, **columns(package), **applied.stamp()}
    return projection.Projected(
        projection.text(package.user_package_id), package.center_id, {"guest_packages": [row]}
    )


TABLES = (projection.Table("guest_packages", key="user_package_id"),)

_HANDLER = projection.Handler(PACKAGE, _project)

# Every name is a guess: the pages print bare bodies only. Two-word events follow
# Class.Booking.NoShow (words joined); the dotted spellings are accepted too.
HANDLERS = {
    "Guest.Package.Creation": _HANDLER,
    "Guest.Package.Redemption": _HANDLER,
    "Guest.Package.RedemptionReversal": _HANDLER,
    "Guest.Package.Redemption.Reversal": _HANDLER,
    "Guest.Package.StatusUpdate": _HANDLER,
    "Guest.Package.Status.Update": _HANDLER,
    "Guest.Package.ValidityUpdate": _HANDLER,
    "Guest.Package.Validity.Update": _HANDLER,
}
