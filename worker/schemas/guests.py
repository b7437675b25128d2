"""Guest.Created, Updated, Deleted and Merged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from worker.pipeline import projection
from worker.schemas import fields as zf
from worker.schemas import parts


@dataclass(frozen=True, slots=True)
class Guest:
    """A guest as the `guests` table keeps it; emails, phones, dates of birth and addresses
    stay in the event's data (see the migration's comment)."""

    guest_id: uuid.UUID
    guest_number: str | None
    code: str | None
    center_id: uuid.UUID | None
    center_name: str | None
    created_date: datetime | None
    first_name: str | None
    last_name: str | None
    gender: int | None
    is_minor: bool | None
    nationality_id: int | None
    country_id: int | None
    state_id: int | None
    receive_transactional_email: bool | None
    receive_transactional_sms: bool | None
    receive_transactional_whatsapp: bool | None
    receive_marketing_email: bool | None
    receive_marketing_sms: bool | None
    receive_lp_statement: bool | None
    opt_in_for_loyalty_program: bool | None
    transactional_email_optin: int | None
    transactional_sms_optin: int | None
    transactional_whatsapp_optin: int | None
    marketing_email_optin: int | None
    marketing_sms_optin: int | None


def _integer() -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True)


def _boolean() -> fields.Boolean:
    return fields.Boolean(load_default=None, allow_none=True)


class _Part(Schema):
    """A nested object of the guest; loads into a dict its parent flattens."""

    class Meta:
        unknown = EXCLUDE  # Zenoti adds keys without notice


class PersonalInfoSchema(_Part):
    first_name = zf.Text(load_default=None)
    last_name = zf.Text(load_default=None)
    gender = _integer()
    is_minor = _boolean()
    nationality_id = _integer()


class AddressInfoSchema(_Part):
    country_id = _integer()
    state_id = _integer()


class PreferencesSchema(_Part):
    receive_transactional_email = _boolean()
    receive_transactional_sms = _boolean()
    receive_transactional_whatsapp = _boolean()
    receive_marketing_email = _boolean()
    receive_marketing_sms = _boolean()
    receive_lp_statement = fields.Boolean(
        data_key="recieve_lp_stmt",  # sic: misspelt
        load_default=None,
        allow_none=True,
    )
    opt_in_for_loyalty_program = _boolean()
    transactional_email_optin = _integer()
    transactional_sms_optin = _integer()
    transactional_whatsapp_optin = _integer()
    marketing_email_optin = _integer()
    marketing_sms_optin = _integer()


class GuestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    guest_id = zf.Guid(data_key="id", required=True, allow_none=False)
    guest_number = zf.Text(data_key="_id", load_default=None)  # an integer id: kept as text
    code = zf.Text(load_default=None)
    center_id = zf.Guid(load_default=None)
    center_name = zf.Text(load_default=None)
    created_date = zf.LocalDateTime(load_default=None)
    personal_info = fields.Nested(PersonalInfoSchema, load_default=None, allow_none=True)
    address_info = fields.Nested(AddressInfoSchema, load_default=None, allow_none=True)
    preferences = fields.Nested(PreferencesSchema, load_default=None, allow_none=True)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> Guest:
        if data["guest_id"] is None:  # the nil GUID is no guest id
            raise ValidationError("Not a valid GUID.", field_name="id")
        flat = parts.flatten(data, ("personal_info", "address_info", "preferences"))
        return Guest(**{name: flat.get(name) for name in Guest.__slots__})


def columns(guest: Guest) -> dict[str, Any]:
    """A guest's fields as `guests` columns."""
    return parts.values(guest)


# Built once: schema objects are reused for every event.
GUEST = GuestSchema()


def _project(deletes: bool | None) -> projection.Projection:
    """Deleted sets deleted_at, Created and Updated clear it (a re-create un-deletes); Merged
    (deletes=None) leaves it alone: with no sample, we can't tell whether its data is the
    surviving guest or the merged-away one, so it updates the row like Updated and nothing more."""

    def project(guest: Guest, applied: projection.Applied) -> projection.Projected:
        row = {**columns(guest), **applied.stamp()}
        if deletes is not None:
            row["deleted_at"] = (applied.event_at or applied.received_at) if deletes else None
        return projection.Projected(str(guest.guest_id), guest.center_id, {"guests": [row]})

    return project


TABLES = (projection.Table("guests", key="guest_id"),)

HANDLERS = {
    "Guest.Created": projection.Handler(GUEST, _project(deletes=False)),
    "Guest.Updated": projection.Handler(GUEST, _project(deletes=False)),
    "Guest.Deleted": projection.Handler(GUEST, _project(deletes=True)),
    # No sample page: loaded as an Updated (see _project), the payload kept in `events`.
    "Guest.Merged": projection.Handler(GUEST, _project(deletes=None)),
}
