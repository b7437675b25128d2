"""Guest package events: Creation, Redemption, Redemption Reversal, Status and Validity Update."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

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
    "user_package_id": ("user_package_id",),
    **parts.GuestPlan.paths,  # its guest_id is in no package sample: kept should one carry it
    "package_id": ("package", "id"),
    "package_name": ("package", "name"),
    "package_type": ("package", "type"),
    "package_state": ("user_package_state",),
    "start_date": ("date", "start"),
    "end_date": ("date", "end"),
    "end_date_with_grace": ("date", "end_date_with_grace"),
    "never_expires": ("never_expires",),
    "expiration_days": ("expiration_days",),
    "start_validity_at_first_redemption": ("start_validity_at_first_redemption",),
    "has_first_redemption": ("has_first_redemption",),
    "completed_schedules": ("schedule", "completed_schedules"),
    "next_schedule_date": ("schedule", "next_schedule_date"),
    # Sums over the package's services (sessions, and the value left to redeem).
    "services_total": ("services", "total"),
    "services_used": ("services", "used"),
    "services_balance": ("services", "balance"),
    "balance_amount": ("services", "balance_amount"),
}


class _Validity(parts.Schema):
    start = zf.LocalDateTime()
    end = zf.LocalDateTime()
    end_date_with_grace = zf.LocalDateTime()


class _Schedule(parts.Schema):
    completed_schedules = zf.Integer()
    next_schedule_date = zf.LocalDateTime()


class _ServiceBalance(parts.Schema):
    total = zf.Integer()
    used = zf.Integer()
    balance = zf.Integer()
    balance_amount = zf.Money()


class _Sums(zf.Many):
    """The package's services, as each counter summed over the services that state it (None
    where none does)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        services = super()._deserialize(value, attr, data, **kwargs)
        sums = {}
        for counter in ("total", "used", "balance", "balance_amount"):
            values = [s[counter] for s in services if s[counter] is not None]
            sums[counter] = sum(values) if values else None
        return sums


class PackageSchema(parts.GuestPlan):
    """Every package event's bare body."""

    record = Package
    paths = PATHS

    user_package_id = zf.RequiredGuid()
    package = zf.Nested(parts.Named)
    user_package_state = zf.Integer()
    date = zf.Nested(_Validity)
    never_expires = zf.Boolean()
    expiration_days = zf.Integer()
    start_validity_at_first_redemption = zf.Boolean()
    has_first_redemption = zf.Boolean()
    schedule = zf.Nested(_Schedule)
    services = _Sums(_ServiceBalance, allow_none=True)


# Built once: schema objects are reused for every event (building one costs more than a load).
PACKAGE = PackageSchema()


def _project(package: Package, applied: projection.Applied) -> projection.Projected:
    return PACKAGES.projected({**PACKAGE.columns(package), **applied.stamp()})


PACKAGES = projection.Table("guest_packages", key="user_package_id")
TABLES = (PACKAGES,)

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
