"""Invoice.Closed: the invoice, its items, and the appointments it closes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from worker.pipeline import projection
from worker.schemas import appointments
from worker.schemas import fields as zf


@dataclass(frozen=True, slots=True)
class InvoiceItem:
    """One line of an invoice; column names of the `invoice_items` table."""

    invoice_item_id: uuid.UUID
    item_id: uuid.UUID | None
    item_name: str | None
    item_type: int | None
    item_code: str | None
    quantity: Decimal | None
    currency_id: int | None
    price_sales: Decimal | None
    price_tax: Decimal | None
    price_final: Decimal | None
    price_discount: Decimal | None
    sold_by_id: uuid.UUID | None
    therapist_name: str | None


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice as the `invoices` table keeps it, with its items and appointments."""

    invoice_id: uuid.UUID
    invoice_number: str | None
    receipt_number: str | None
    appointment_group_id: uuid.UUID | None
    center_id: uuid.UUID | None
    guest_id: uuid.UUID | None
    invoice_date: datetime | None
    is_closed: bool | None
    is_refund: bool | None
    is_locked: bool | None
    currency_id: int | None
    net_price: Decimal | None
    tax: Decimal | None
    rounding_adjustment: Decimal | None
    sum_total: Decimal | None
    items: tuple[InvoiceItem, ...]
    appointments: tuple[appointments.Appointment, ...]


def _integer() -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True)


def _boolean() -> fields.Boolean:
    return fields.Boolean(load_default=None, allow_none=True)


def _nested(schema: type[Schema]) -> fields.Nested:
    return fields.Nested(schema, load_default=None, allow_none=True)


def _require(data: dict[str, Any], name: str, data_key: str) -> None:
    if data[name] is None:  # the nil GUID is no id
        raise ValidationError("Not a valid GUID.", field_name=data_key)


class _Part(Schema):
    """A nested object; loads into a dict its parent flattens."""

    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice


class ItemPriceSchema(_Part):
    currency_id = _integer()
    price_sales = zf.Money(data_key="sales")
    price_tax = zf.Money(data_key="tax")
    price_final = zf.Money(data_key="final")
    price_discount = zf.Money(data_key="discount")


class TotalPriceSchema(_Part):
    currency_id = _integer()
    net_price = zf.Money()
    tax = zf.Money()
    rounding_adjustment = zf.Money()
    sum_total = zf.Money()


class GuestSchema(_Part):
    guest_id = zf.Guid(data_key="id", load_default=None)  # names, phone, email: events.data


_ITEM_PRICE = ("currency_id", "price_sales", "price_tax", "price_final", "price_discount")
_TOTAL_PRICE = ("currency_id", "net_price", "tax", "rounding_adjustment", "sum_total")


class InvoiceItemSchema(_Part):
    invoice_item_id = zf.Guid(required=True, allow_none=False)
    item_id = zf.Guid(data_key="id", load_default=None)  # the service, product, package...
    item_name = zf.Text(data_key="name", load_default=None)
    item_type = fields.Integer(data_key="type", load_default=None, allow_none=True)
    item_code = zf.Text(data_key="code", load_default=None)
    quantity = fields.Decimal(allow_nan=False, allow_none=True, load_default=None)
    price = _nested(ItemPriceSchema)
    sold_by_id = zf.Guid(data_key="sale_by_id", load_default=None)
    therapist_name = zf.Text(load_default=None)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> InvoiceItem:
        _require(data, "invoice_item_id", "invoice_item_id")
        price = data.pop("price") or {}
        return InvoiceItem(**data, **{n: price.get(n) for n in _ITEM_PRICE})


class InvoiceSchema(_Part):
    invoice_id = zf.Guid(data_key="id", required=True, allow_none=False)
    invoice_number = zf.Text(load_default=None)
    receipt_number = zf.Text(load_default=None)
    appointment_group_id = zf.Guid(load_default=None)
    center_id = zf.Guid(load_default=None)
    guest = _nested(GuestSchema)
    invoice_date = zf.LocalDateTime(load_default=None)
    is_closed = _boolean()
    is_refund = _boolean()
    is_locked = fields.Boolean(data_key="lock", load_default=None, allow_none=True)
    total_price = _nested(TotalPriceSchema)
    items = fields.List(
        fields.Nested(InvoiceItemSchema), data_key="invoice_items", load_default=list
    )
    appointments = fields.List(fields.Nested(appointments.AppointmentSchema), load_default=list)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Invoice:
        _require(data, "invoice_id", "id")
        guest, total = data.pop("guest") or {}, data.pop("total_price") or {}
        return Invoice(
            **{
                **data,
                **{n: total.get(n) for n in _TOTAL_PRICE},
                "guest_id": guest.get("guest_id"),
                "items": tuple(data["items"]),
                "appointments": tuple(data["appointments"]),
            }
        )


class InvoiceClosedSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    invoice = fields.Nested(InvoiceSchema, required=True)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Invoice:
        return data["invoice"]


# The `appointments` columns an invoice's appointment carries: the sample sends no room_id,
# equipment_id or appointment_progress (a Completed at the same time outranks the invoice).
_NOT_SENT = frozenset({"room_id", "equipment_id", "progress"})
# What an appointment is once its invoice closed: Zenoti calls a checked-out appointment Closed.
CLOSED = "closed"


def _project(invoice: Invoice, applied: projection.Applied) -> projection.Projected:
    stamp = applied.stamp()
    head = {n: getattr(invoice, n) for n in Invoice.__slots__ if n not in ("items", "appointments")}
    items = [
        {
            **{n: getattr(item, n) for n in InvoiceItem.__slots__},
            "invoice_id": invoice.invoice_id,
            **stamp,
        }
        for item in invoice.items
    ]
    closed = [
        {
            **{k: v for k, v in appointments.columns(a).items() if k not in _NOT_SENT},
            "appointment_group_id": invoice.appointment_group_id,
            "invoice_id": invoice.invoice_id,
            "invoice_number": invoice.invoice_number,
            "center_id": invoice.center_id,
            "status": CLOSED,
            **stamp,
        }
        for a in invoice.appointments
    ]
    return projection.Projected(
        str(invoice.invoice_id),
        invoice.center_id,
        {"invoices": [{**head, **stamp}], "invoice_items": items, "appointments": closed},
    )


# Built once: schema objects are reused for every event.
INVOICE_CLOSED = InvoiceClosedSchema()

TABLES = (
    projection.Table("invoices", key="invoice_id"),
    projection.Table("invoice_items", key="invoice_item_id"),
)

HANDLERS = {
    "Invoice.Closed": projection.Handler(INVOICE_CLOSED, _project),
}
