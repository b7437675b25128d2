"""Guest.Created, Updated, Deleted and Merged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

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


class PersonalInfoSchema(parts.Schema):
    first_name = zf.Text()
    last_name = zf.Text()
    gender = zf.Integer()
    is_minor = zf.Boolean()
    nationality_id = zf.Integer()


class AddressInfoSchema(parts.Schema):
    country_id = zf.Integer()
    state_id = zf.Integer()


class PreferencesSchema(parts.Schema):
    receive_transactional_email = zf.Boolean()
    receive_transactional_sms = zf.Boolean()
    receive_transactional_whatsapp = zf.Boolean()
    receive_marketing_email = zf.Boolean()
    receive_marketing_sms = zf.Boolean()
    receive_lp_statement = zf.Boolean(data_key="recieve_lp_stmt")  # sic: misspelt
    opt_in_for_loyalty_program = zf.Boolean()
    transactional_email_optin = zf.Integer()
    transactional_sms_optin = zf.Integer()
    transactional_whatsapp_optin = zf.Integer()
    marketing_email_optin = zf.Integer()
    marketing_sms_optin = zf.Integer()


class GuestSchema(parts.Schema):
    record = Guest

    guest_id = zf.RequiredGuid(data_key="id")
    guest_number = zf.Text(data_key="_id")  # an integer id: kept as text
    code = zf.Text()
    center_id = zf.Guid()
    center_name = zf.Text()
    created_date = zf.LocalDateTime()
    personal_info = zf.Flattened(PersonalInfoSchema)
    address_info = zf.Flattened(AddressInfoSchema)
    preferences = zf.Flattened(PreferencesSchema)


# Built once: schema objects are reused for every event.
GUEST = GuestSchema()


def _project(deletes: bool | None) -> projection.Projection:
    """Deleted sets deleted_at, Created and Updated clear it (a re-create un-deletes); Merged
    (deletes=None) leaves it alone: with no sample, we can't tell whether its data is the
    surviving guest or the merged-away one, so it updates the row like Updated and nothing more."""

    def project(guest: Guest, applied: projection.Applied) -> projection.Projected:
        row = {**parts.columns(guest), **applied.stamp()}
        if deletes is not None:
            row["deleted_at"] = applied.at if deletes else None
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
