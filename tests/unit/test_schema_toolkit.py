"""The schema toolkit (worker/schemas/parts.py, fields.py) that every resource module uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from marshmallow import ValidationError

from worker.schemas import fields as zf
from worker.schemas import parts

KEY = "3f0a2c1e-6b1d-4a51-9a8e-2a7c0d6f1b44"


@dataclass(frozen=True, slots=True)
class Thing:
    thing_id: uuid.UUID
    name: str | None
    size: int | None


class _Details(parts.Schema):
    size = zf.Integer()


class ThingSchema(parts.Schema):
    record = Thing

    thing_id = zf.RequiredGuid(data_key="id")
    name = zf.Text()
    details = zf.Flattened(_Details)


@dataclass(frozen=True, slots=True)
class SparseThing:
    thing_id: uuid.UUID
    carried: frozenset[str]
    name: str | None
    size: int | None


SPARSE_PATHS = {"thing_id": ("thing_id",), "name": ("name",), "size": ("details", "size")}


class SparseThingSchema(parts.Sparse):
    record = SparseThing
    paths = SPARSE_PATHS

    thing_id = zf.RequiredGuid()
    name = zf.Text()
    details = zf.Nested(_Details)


@pytest.mark.parametrize("key", [str(zf.NIL_GUID), "", None, "not-a-guid-SECRET"])
def test_a_required_guid_refuses_no_id_naming_the_field_not_the_value(key):
    """The nil GUID, "", null and a non-GUID are no key: the error is under the data key and
    never quotes what was sent; a missing key is refused too."""
    with pytest.raises(ValidationError) as caught:
        ThingSchema().load({"id": key, "name": "Priya"})
    assert list(caught.value.messages) == ["id"]
    assert "SECRET" not in str(caught.value.messages) and "Priya" not in str(caught.value)
    with pytest.raises(ValidationError, match="Missing data for required field"):
        ThingSchema().load({"name": "x"})


def test_a_schema_loads_its_record_with_parts_flattened_and_unknown_keys_dropped():
    """Optional fields load as None when absent; a flattened part's fields land on the
    record; keys nobody declared are excluded."""
    loaded = ThingSchema().load({"id": KEY.upper(), "details": {"size": 3}, "new_key": 1})
    assert loaded == Thing(uuid.UUID(KEY), None, 3)
    assert ThingSchema().load({"id": KEY, "details": None}) == Thing(uuid.UUID(KEY), None, None)


def test_a_record_field_the_schema_does_not_load_fails_when_the_schema_is_built():
    """A forgotten field is a TypeError at import, naming the field, not a silent None."""

    class Forgetful(parts.Schema):
        record = Thing
        thing_id = zf.RequiredGuid(data_key="id")
        name = zf.Text()

    with pytest.raises(TypeError, match=r"Forgetful loads no \['size'\]"):
        Forgetful()


def test_a_sparse_body_projects_only_the_columns_it_carries():
    """Absent keys are not carried, so their columns are left out (not blanked); a key sent
    as null is carried, so its column is cleared."""
    schema = SparseThingSchema()
    partial = schema.load({"thing_id": KEY, "details": {"size": 2}})
    assert schema.columns(partial) == {"thing_id": uuid.UUID(KEY), "size": 2}
    cleared = schema.load({"thing_id": KEY, "name": None})
    assert schema.columns(cleared) == {"thing_id": uuid.UUID(KEY), "name": None}
