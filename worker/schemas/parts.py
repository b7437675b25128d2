"""The one way to declare a schema of a Zenoti payload: `Schema`, which every schema extends,
`Sparse` for bodies each event type fills differently, and the parts several resources share
(centers, guests, named plans, invoices, prices; what memberships and packages both carry)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import marshmallow

from worker.schemas import fields as zf


class Schema(marshmallow.Schema):
    """A Zenoti object. Unknown keys are excluded (Zenoti adds keys without notice); the fields
    of its zf.Flattened parts are lifted to its own level; then it loads into `record`, a frozen
    dataclass whose fields are named after the schema's, or (no record: a part) into a dict.

    Every field of the record must be loaded by the schema: checked when the schema is built.
    """

    class Meta:
        unknown = marshmallow.EXCLUDE

    record: ClassVar[type | None] = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._flattened = tuple(
            name for name, field in self.load_fields.items() if isinstance(field, zf.Flattened)
        )
        if self.record is not None:
            unloaded = set(names(self.record)) - self.loaded()
            if unloaded:
                raise TypeError(f"{type(self).__name__} loads no {sorted(unloaded)}")

    def loaded(self) -> set[str]:
        """The names this schema's data has once its parts are flattened."""
        loaded = set(self.load_fields)
        for name in self._flattened:
            loaded |= set(self.load_fields[name].schema.load_fields)
        return loaded - set(self._flattened)

    @marshmallow.post_load
    def _load(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.build(flatten(data, self._flattened))

    def build(self, data: dict[str, Any]) -> Any:
        """The record of the loaded (flattened) data; a schema with a quirk overrides this."""
        if self.record is None:
            return data
        return self.record(**{name: data.get(name) for name in names(self.record)})


class Sparse(Schema):
    """A body whose events each carry some of the columns (memberships: only Created has the
    price, only Freeze the freeze...). `paths` maps each column to where it is in the body; the
    record's `carried` names the top-level keys the body had, and `columns` returns only the
    columns whose first key it had: the others are left as the table has them, not blanked.

    So that the record can tell, an absent optional key loads as nothing, not as None.
    """

    paths: ClassVar[dict[str, tuple[str, ...]]] = {}

    def on_bind_field(self, field_name: str, field_obj: marshmallow.fields.Field) -> None:
        if not field_obj.required:
            field_obj.load_default = marshmallow.missing

    def loaded(self) -> set[str]:
        found = {column for column, path in self.paths.items() if path[0] in self.load_fields}
        return {*found, "carried"}

    def build(self, data: dict[str, Any]) -> Any:
        carried = frozenset(data)
        return self.record(carried=carried, **{c: dig(data, p) for c, p in self.paths.items()})

    def columns(self, record: Any) -> dict[str, Any]:
        """The columns this event carries (see paths)."""
        return {c: getattr(record, c) for c, p in self.paths.items() if p[0] in record.carried}


@functools.cache
def names(record_type: type) -> tuple[str, ...]:
    """A dataclass's field names, in order (read once per type)."""
    return tuple(field.name for field in dataclasses.fields(record_type))


def columns(record: Any, leave: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A record's fields as {column: value}, but those in `leave`."""
    return {name: getattr(record, name) for name in names(type(record)) if name not in leave}


def dig(data: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The value at path in loaded (nested) data; None where a part is absent or null."""
    for key in path:
        if data is None:
            return None
        data = data.get(key)
    return data


def flatten(data: dict[str, Any], nested: tuple[str, ...]) -> dict[str, Any]:
    """A loaded object with the fields of its `nested` parts lifted to the top level."""
    if not nested:
        return data
    flat = {k: v for k, v in data.items() if k not in nested}
    for part in nested:
        flat.update(data.get(part) or {})
    return flat


class Center(Schema):
    id = zf.Guid()


class Guest(Schema):
    """A guest named in another resource's body: its id only (names, phones and emails stay
    in events.data). Flattened, it loads as the parent's guest_id."""

    guest_id = zf.Guid(data_key="id")


class Named(Schema):
    """A membership plan or a package: id, name, type code."""

    id = zf.Guid()
    name = zf.Text()
    type = zf.Integer()


class Invoice(Schema):
    id = zf.Guid()
    no = zf.Text()


class Price(Schema):
    sales = zf.Money()
    tax = zf.Money()
    final = zf.Money()


class Purchase(Schema):
    price = zf.Nested(Price)
    date = zf.LocalDateTime()


class GuestPlan(Sparse):
    """A guest's membership or package: what both bodies carry, and its columns. A subclass
    adds its own fields and paths (`paths = {key, **GuestPlan.paths, ...}`)."""

    paths: ClassVar[dict[str, tuple[str, ...]]] = {
        "guest_id": ("guest_id",),
        "center_id": ("center", "id"),
        "status_code": ("status",),
        "invoice_id": ("invoice", "id"),
        "invoice_number": ("invoice", "no"),
        "purchase_date": ("purchase", "date"),
        "price_sales": ("purchase", "price", "sales"),
        "price_tax": ("purchase", "price", "tax"),
        "price_final": ("purchase", "price", "final"),
        "is_refunded": ("is_refunded",),
    }

    guest_id = zf.Guid()
    center = zf.Nested(Center)
    status = zf.Integer()
    invoice = zf.Nested(Invoice)
    purchase = zf.Nested(Purchase)
    is_refunded = zf.Boolean()
