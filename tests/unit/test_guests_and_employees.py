"""Guest and employee events, parsed the way Zenoti's sample pages print them."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.fixtures import samples
from worker.pipeline import envelope, handlers, projection
from zenoti_ingest import contract, errors

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
# The shape of the one sample id that is not a GUID (booking pages: a `t` in a hex group).
NOT_A_GUID = "b9e61937-d5ce-46d5-be26-2659280d65t3"
GUEST_ID = uuid.UUID("b9e61937-d5ce-46d5-be26-2659280d5eb9")
CHICAGO = uuid.UUID("34aac717-e7df-4231-afc8-14420213957c")


def project(body: bytes, hint: str = "") -> projection.Projected:
    delivery = contract.Delivery("01900000-0000-7000-8000-000000000001", 0, hint, body)
    event = envelope.open_delivery(delivery)
    applied = projection.Applied(
        event.event_type, event.event_timestamp, RECEIVED, delivery.ingest_id
    )
    return handlers.project(event, applied)


def one_row(body: bytes, table: str, hint: str = "") -> dict:
    [row] = project(body, hint).rows[table]
    return row


def sample(page: str, **data_changes) -> tuple[str, dict]:
    """A sample page's event type and data, with top-level data keys changed."""
    document = samples.repaired_json(page)
    return document["event_type"], {**document["data"], **data_changes}


def test_every_event_type_is_registered_to_its_table():
    """The seven guest and employee types are handled, each writing its own table."""
    for event_type in ("Guest.Created", "Guest.Updated", "Guest.Deleted", "Guest.Merged"):
        assert handlers.HANDLERS[event_type].schema is handlers.HANDLERS["Guest.Created"].schema
    for event_type in ("Employee.Created", "Employee.Updated", "Employee.Deleted"):
        assert event_type in handlers.HANDLERS
    assert handlers.TABLES["guests"].key == "guest_id"
    assert handlers.TABLES["employees"].key == "employee_id"


def test_guest_created_sample_loads_field_by_field():
    """Every guest column comes from the printed Guest.Created body, quirks normalized."""
    row = one_row(samples.printed_body("guest-created"), "guests")
    assert row == {
        "guest_id": GUEST_ID,
        "guest_number": "683768",  # the integer `_id`, as text
        "code": "1A347",
        "center_id": CHICAGO,
        "center_name": "Chicago",
        "created_date": datetime(2022, 3, 11, 14, 59, 49),  # no offset: kept as sent
        "first_name": "Joseph",
        "last_name": "Harrington",
        "gender": 0,
        "is_minor": False,
        "nationality_id": 95,
        "country_id": 225,
        "state_id": -1,
        "receive_transactional_email": True,
        "receive_transactional_sms": True,
        "receive_transactional_whatsapp": True,
        "receive_marketing_email": True,
        "receive_marketing_sms": True,
        "receive_lp_statement": True,
        "opt_in_for_loyalty_program": True,
        "transactional_email_optin": 0,
        "transactional_sms_optin": 0,
        "transactional_whatsapp_optin": 0,
        "marketing_email_optin": 0,
        "marketing_sms_optin": 0,
        "deleted_at": None,
        "last_event_type": "Guest.Created",
        "last_event_at": datetime(2022, 3, 11, 14, 59, 50, 874583, tzinfo=UTC),
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }


def test_guest_rows_carry_no_contact_details():
    """Emails, phones, dates of birth and addresses never become columns."""
    row = one_row(samples.printed_body("guest-created"), "guests")
    personal = {
        "email",
        "mobile_phone",
        "work_phone",
        "home_phone",
        "date_of_birth",
        "anniversary_date",
        "address_1",
        "address_2",
        "city",
        "zip_code",
        "user_name",
        "middle_name",
        "pan",
        "dob_incomplete_year",
    }
    assert not personal & row.keys()
    assert "29214" not in row.values()  # the zip code


@pytest.mark.parametrize(
    ("page", "code", "whatsapp_optin", "deleted"),
    [("guest-updated", "1A347ABH", 6, False), ("guest-deleted", "1A347ABH", 6, True)],
)
def test_guest_updated_and_deleted_samples(page, code, whatsapp_optin, deleted):
    """Updated and Deleted load the same columns; Deleted sets deleted_at to its event time."""
    document = samples.repaired_json(page)
    row = one_row(samples.printed_body(page), "guests")
    event_at = datetime.fromisoformat(document["event_timestamp"][:26] + "+00:00")
    assert (row["guest_id"], row["code"], row["transactional_whatsapp_optin"]) == (
        GUEST_ID,
        code,
        whatsapp_optin,
    )
    assert row["receive_transactional_whatsapp"] is False
    assert row["last_event_type"] == document["event_type"]
    assert row["last_event_at"] == event_at
    assert row["deleted_at"] == (event_at if deleted else None)
    created = one_row(samples.printed_body("guest-created"), "guests")
    assert row.keys() == created.keys()  # rows of every guest type carry the same columns


def test_guest_merged_loads_like_an_update_and_leaves_deleted_at_alone():
    """Guest.Merged (no sample) takes an Updated body; it neither deletes nor restores."""
    _, data = sample("guest-updated")
    body = samples.envelope("Guest.Merged", data, "m1", "2022-03-12T00:00:00Z")
    projected = project(body)
    [row] = projected.rows["guests"]
    assert "deleted_at" not in row
    assert (row["guest_id"], row["last_event_type"]) == (GUEST_ID, "Guest.Merged")
    assert (projected.entity_id, projected.center_id) == (str(GUEST_ID), CHICAGO)


def test_bare_guest_deleted_uses_the_received_time():
    """Without an envelope (type from the URL) there is no event time: deleted_at = receipt."""
    _, data = sample("guest-deleted")
    row = one_row(json.dumps(data).encode(), "guests", hint="Guest.Deleted")
    assert row["last_event_at"] is None
    assert row["deleted_at"] == RECEIVED


@pytest.mark.parametrize("raw_id", [683768, "683768"])
def test_integer_id_loads_as_text_whatever_its_json_type(raw_id):
    """`_id` is an integer in the samples and may come as a string: the same text either way."""
    event_type, data = sample("guest-created", _id=raw_id)
    body = samples.envelope(event_type, data, "g1", "2022-03-11T14:59:50Z")
    assert one_row(body, "guests")["guest_number"] == "683768"


def test_guest_quirks_uppercase_guid_empty_strings_and_missing_parts():
    """Uppercase GUIDs load, "" means NULL, absent or null nested objects give NULL columns,
    and unknown keys are ignored."""
    event_type, data = sample(
        "guest-created",
        id=str(GUEST_ID).upper(),
        code="",
        center_id="00000000-0000-0000-0000-000000000000",
        preferences=None,
        brand_new={"x": 1},
    )
    del data["address_info"]
    row = one_row(samples.envelope(event_type, data, "g1", "2022-03-11T14:59:50Z"), "guests")
    assert row["guest_id"] == GUEST_ID
    assert row["code"] is None and row["center_id"] is None
    assert row["country_id"] is None and row["marketing_sms_optin"] is None
    assert row["first_name"] == "Joseph"


@pytest.mark.parametrize(("page", "field"), [("guest-created", "id"), ("employee-created", "id")])
def test_an_id_that_is_not_a_guid_is_a_schema_error_naming_the_field(page, field):
    """An id shaped like the booking sample's `...65t3` is refused, naming the field and its
    JSON type only; a repaired copy of the same body loads."""
    event_type, data = sample(page, **{field: NOT_A_GUID})
    body = samples.envelope(event_type, data, "x1", "2022-03-11T14:59:50Z")
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(body)
    assert caught.value.reason == f"{field}: Not a valid GUID (got string)"
    assert "65t3" not in caught.value.reason
    repaired = samples.envelope(
        event_type, {**data, field: NOT_A_GUID.replace("t", "f")}, "x1", "2022-03-11T14:59:50Z"
    )
    table = "guests" if page.startswith("guest") else "employees"
    key = "guest_id" if table == "guests" else "employee_id"
    assert one_row(repaired, table)[key] == uuid.UUID(NOT_A_GUID.replace("t", "f"))


@pytest.mark.parametrize("page", ["guest-created", "employee-created"])
def test_nil_or_missing_id_is_a_schema_error(page):
    """A guest or employee without a real id can't be keyed: a schema dead letter."""
    event_type, data = sample(page, id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(errors.SchemaMismatch, match=r"^id: Not a valid GUID"):
        project(samples.envelope(event_type, data, "x1", "2022-03-11T14:59:50Z"))
    del data["id"]
    with pytest.raises(errors.SchemaMismatch, match=r"^id: Missing data .* \(got missing\)"):
        project(samples.envelope(event_type, data, "x1", "2022-03-11T14:59:50Z"))


def test_schema_errors_in_nested_objects_name_the_path_never_the_value():
    """A bad nested value is reported as personal_info.<field> with its JSON type; the
    names, emails and other personal values around it never appear in the reason."""
    event_type, data = sample("guest-created")
    data = copy.deepcopy(data)
    data["personal_info"]["gender"] = "Harrington-Secret"
    data["personal_info"]["first_name"] = {"given": "Joseph"}
    data["address_info"] = "221B Baker Street"
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(samples.envelope(event_type, data, "x1", "2022-03-11T14:59:50Z"))
    reason = caught.value.reason
    assert "personal_info.gender: Not a valid integer (got string)" in reason
    assert "personal_info.first_name: Not a valid string (got object)" in reason
    assert "address_info: Invalid input type (got string)" in reason
    for secret in ("Harrington", "Secret", "Joseph", "Baker"):
        assert secret not in reason


def test_employee_created_sample_loads_field_by_field():
    """Every employee column comes from the printed Employee.Created body: the nil GUID and
    the .NET default date load as NULL, nested job, role and catalog fields are flattened."""
    row = one_row(samples.printed_body("employee-created"), "employees")
    assert row == {
        "employee_id": uuid.UUID("ba06e416-a2c2-4324-a6ef-e328ff91bbc2"),
        "code": "246",
        "center_id": uuid.UUID("99d6833e-ceb9-4232-85c8-05fb78bd2519"),
        "is_consultant": None,
        "created_by": None,  # the nil GUID
        "first_name": "George",
        "last_name": "Soderdam",
        "gender": -1,
        "job_id": uuid.UUID("aa165487-d5b0-4525-ab24-1579eb6fb9fe"),
        "job_name": "BEAUTICIAN",
        "designation_id": None,
        "start_date": datetime(2022, 3, 22),
        "end_date": None,  # 0001-01-01T00:00:00
        "include_in_payroll": 1,
        "security_profile_id": None,  # the nil GUID
        "show_in_catalog": False,
        "deleted_at": None,
        "last_event_type": "Employee.Created",
        "last_event_at": datetime(2022, 3, 22, 9, 12, 38, 780089, tzinfo=UTC),
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }


def test_employee_updated_and_deleted_samples():
    """Updated keeps deleted_at NULL; Deleted (a different employee, 6 fractional digits,
    code "") sets it to its event time; both carry the Created columns."""
    created = one_row(samples.printed_body("employee-created"), "employees")
    updated = one_row(samples.printed_body("employee-updated"), "employees")
    deleted = one_row(samples.printed_body("employee-deleted"), "employees")
    assert updated.keys() == deleted.keys() == created.keys()
    assert updated["employee_id"] == created["employee_id"] and updated["deleted_at"] is None
    assert updated["last_event_at"] == datetime(2022, 3, 22, 9, 14, 29, 697779, tzinfo=UTC)
    assert deleted["employee_id"] == uuid.UUID("6285ff42-40d7-43e8-875a-eb127ebf6938")
    assert (
        deleted["deleted_at"]
        == deleted["last_event_at"]
        == datetime(2022, 3, 22, 9, 8, 14, 86947, tzinfo=UTC)
    )
    assert (deleted["code"], deleted["job_name"], deleted["gender"]) == (None, "THERAPIST", 1)
    assert deleted["start_date"] == datetime(2018, 9, 21)
    assert not {"email", "mobile_phone", "birth_date", "salary", "hourly_rate"} & deleted.keys()


@pytest.mark.parametrize("designation_id", [42, "7a3e0c1b-1111-4a4a-9b9b-123456789abc"])
def test_employee_designation_id_of_either_type_loads_as_text(designation_id):
    """designation_id is null in every sample: an integer or a GUID both load, as text."""
    event_type, data = sample("employee-created")
    data = copy.deepcopy(data)
    data["job_info"]["designation_id"] = designation_id
    body = samples.envelope(event_type, data, "e1", "2022-03-22T09:12:38Z")
    assert one_row(body, "employees")["designation_id"] == str(designation_id)


def test_employee_job_id_that_is_not_a_guid_names_the_nested_field():
    """A bad GUID inside job_info is reported by its full path."""
    event_type, data = sample("employee-created")
    data = copy.deepcopy(data)
    data["job_info"]["job_id"] = NOT_A_GUID
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(samples.envelope(event_type, data, "e1", "2022-03-22T09:12:38Z"))
    assert caught.value.reason == "job_info.job_id: Not a valid GUID (got string)"
