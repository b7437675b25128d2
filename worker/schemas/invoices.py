"""Invoice.Closed: the invoice, its items, and the appointments it closes."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from worker.pipeline import projection
from worker.schemas import appointments, parts
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


class ItemPriceSchema(parts.Schema):
    currency_id = zf.Integer()
    price_sales = zf.Money(data_key="sales")
    price_tax = zf.Money(data_key="tax")
    price_final = zf.Money(data_key="final")
    price_discount = zf.Money(data_key="discount")


class TotalPriceSchema(parts.Schema):
    currency_id = zf.Integer()
    net_price = zf.Money()
    tax = zf.Money()
    rounding_adjustment = zf.Money()
    sum_total = zf.Money()


class InvoiceItemSchema(parts.Schema):
    record = InvoiceItem

    invoice_item_id = zf.RequiredGuid()
    item_id = zf.Guid(data_key="id")  # the service, product, package...
    item_name = zf.Text(data_key="name")
    item_type = zf.Integer(data_key="type")
    item_code = zf.Text(data_key="code")
    quantity = zf.Decimal()
    price = zf.Flattened(ItemPriceSchema)
    sold_by_id = zf.Guid(data_key="sale_by_id")
    therapist_name = zf.Text()


class InvoiceSchema(parts.Schema):
    record = Invoice

    invoice_id = zf.RequiredGuid(data_key="id")
    invoice_number = zf.Text()
    receipt_number = zf.Text()
    appointment_group_id = zf.Guid()
    center_id = zf.Guid()
    guest = zf.Flattened(parts.Guest)
    invoice_date = zf.LocalDateTime()
    is_closed = zf.Boolean()
    is_refund = zf.Boolean()
    is_locked = zf.Boolean(data_key="lock")
    total_price = zf.Flattened(TotalPriceSchema)
    items = zf.Many(InvoiceItemSchema, data_key="invoice_items")
    appointments = zf.Many(appointments.AppointmentSchema)


class InvoiceClosedSchema(parts.Schema):
    invoice = zf.Nested(InvoiceSchema, required=True)

    def build(self, data: dict[str, Any]) -> Invoice:
        return data["invoice"]


# The `appointments` columns an invoice's appointment carries: the sample sends no room_id,
# equipment_id or appointment_progress (a Completed at the same time outranks the invoice).
_NOT_SENT = frozenset({"room_id", "equipment_id", "progress"})
# What an appointment is once its invoice closed: Zenoti calls a checked-out appointment Closed.
CLOSED = "closed"


def _project(invoice: Invoice, applied: projection.Applied) -> projection.Projected:
    stamp = applied.stamp()
    head = parts.columns(invoice, leave=frozenset({"items", "appointments"}))
    items = [
        {**parts.columns(item), "invoice_id": invoice.invoice_id, **stamp} for item in invoice.items
    ]
    closed = [
        appointments.row(a, invoice, CLOSED, applied, _NOT_SENT) for a in invoice.appointments
    ]
    return projection.Projected(
        str(invoice.invoice_id),
        invoice.center_id,
        {"invoices": [{**head, **stamp}], "invoice_items": items, "appointments": closed},
    )


def _project_snapshot(invoice: Invoice, applied: projection.Applied) -> projection.Projected:
    """Invoice.Snapshot: `GET /v1/invoices/{id}` answers in Invoice.Closed's data shape (key
    for key); an invoice still open closes none of its appointments."""
    projected = _project(invoice, applied)
    if invoice.is_closed:
        return projected
    rows = {table: rows for table, rows in projected.rows.items() if table != "appointments"}
    return dataclasses.replace(projected, rows=rows)


# Built once: schema objects are reused for every event.
INVOICE_CLOSED = InvoiceClosedSchema()

TABLES = (
    projection.Table("invoices", key="invoice_id"),
    projection.Table("invoice_items", key="invoice_item_id"),
)

HANDLERS = {
    "Invoice.Closed": projection.Handler(INVOICE_CLOSED, _project),
    "Invoice.Snapshot": projection.Handler(INVOICE_CLOSED, _project_snapshot),
}
