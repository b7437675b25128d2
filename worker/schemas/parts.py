"""Nested pieces that several Zenoti resources share (centers, named plans, invoices, prices),
and `dig`, which reads a loaded nested object along a path."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields

from worker.schemas import fields as zf


def dig(data: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The value at path in loaded (nested) data; None where a part is absent or null."""
    for key in path:
        if data is None:
            return None
        data = data.get(key)
    return data


def flatten(data: dict[str, Any], nested: tuple[str, ...]) -> dict[str, Any]:
    """A loaded object with the fields of its `nested` parts lifted to the top level."""
    flat = {k: v for k, v in data.items() if k not in nested}
    for part in nested:
        flat.update(data[part] or {})
    return flat


def values(record: Any) -> dict[str, Any]:
    """A slots dataclass record's fields as {column: value}."""
    return {name: getattr(record, name) for name in record.__slots__}


class Part(Schema):
    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice


class Center(Part):
    id = zf.Guid(load_default=None)


class Named(Part):
    """A membership plan or a package: id, name, type code."""

    id = zf.Guid(load_default=None)
    name = zf.Text(load_default=None)
    type = fields.Integer(load_default=None, allow_none=True)


class Invoice(Part):
    id = zf.Guid(load_default=None)
    no = zf.Text(load_default=None)


class Price(Part):
    sales = zf.Money()
    tax = zf.Money()
    final = zf.Money()


class Purchase(Part):
    price = fields.Nested(Price, load_default=None, allow_none=True)
    date = zf.LocalDateTime(load_default=None)
