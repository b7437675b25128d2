"""Invoice.Closed, AppointmentGroup.Created and AppointmentGroup.Status, parsed and projected."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fixtures import samples
from worker.pipeline import envelope, handlers, projection
from zenoti_ingest import contract, errors

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
INVOICE_PAGE = "invoice-closed-event"

# The Invoice.Closed page's breakages, obviously the page's: a missing comma after the guest's
# phone, and a capture that stops inside `transactions` (closed here as an empty array; what a
# transaction looks like is not shown, so nothing of it is projected).
_INVOICE_REPAIRS = {'"+91 9885117036"\n': '"+91 9885117036",\n'}
_INVOICE_CUT = '"transactions": ['
_INVOICE_TAIL = '"transactions": []\n    }\n  }\n}\n'


def invoice_printed_body() -> bytes:
    """The Invoice.Closed body as printed: from its first `{` to the page's end (the page has
    no closing `}`, so samples.printed_body can't find its end)."""
    text = samples.page(INVOICE_PAGE)
    return text[text.index("\n{") + 1 :].encode()


def invoice_repaired_json() -> dict:
    """The Invoice.Closed envelope with the page's breakages mended."""
    text = invoice_printed_body().decode()
    for broken, fixed in _INVOICE_REPAIRS.items():
        text = text.replace(broken, fixed)
    return json.loads(text[: text.index(_INVOICE_CUT)] + _INVOICE_TAIL)


def invoice_event(delivery_id: str, timestamp: str, **changes) -> bytes:
    """An Invoice.Closed envelope from the repaired sample; `changes` update `data.invoice`."""
    document = invoice_repaired_json()
    document["data"]["invoice"].update(changes)
    return samples.envelope("Invoice.Closed", document["data"], delivery_id, timestamp)


def project(body: bytes, hint: str = "") -> projection.Projected:
    delivery = contract.Delivery("01900000-0000-7000-8000-000000000001", 0, hint, body)
    event = envelope.open_delivery(delivery)
    applied = projection.Applied(
        event.event_type, event.event_timestamp, RECEIVED, delivery.ingest_id
    )
    return handlers.project(event, applied)


def enveloped(event_type: str, data: dict) -> bytes:
    return samples.envelope(event_type, data, "d1", "2024-07-25T14:52:06.769417Z")


def test_event_types_and_tables_are_registered():
    """The three event types have handlers, and their tables are declared with their keys."""
    assert {"Invoice.Closed", "AppointmentGroup.Created", "AppointmentGroup.Status"} <= set(
        handlers.HANDLERS
    )
    keys = {
        name: handlers.TABLES[name].key
        for name in ("appointment_groups", "invoices", "invoice_items")
    }
    assert keys == {
        "appointment_groups": "appointment_group_id",
        "invoices": "invoice_id",
        "invoice_items": "invoice_item_id",
    }


def test_group_created_sample_field_by_field():
    """The Created sample writes its group (guest id, invoice, center, utm) and books its
    appointment with the other spellings and the centre-local times; no progress key."""
    body = samples.printed_body("appointment-group-created")
    data = json.loads(body)["data"]
    projected = project(body)
    assert projected.entity_id == data["appointment_group_id"]
    assert projected.center_id == uuid.UUID(data["center_id"])
    [group] = projected.rows["appointment_groups"]
    assert group == {
        "appointment_group_id": uuid.UUID("883ce749-12a8-497b-bc50-2c3206c50e91"),
        "invoice_id": uuid.UUID("e8cedcb5-58b7-42bf-8024-7184c877aa03"),
        "invoice_number": "8086",
        "invoice_number_prefix": "BEL1",
        "center_id": uuid.UUID("1aab4fd2-2ff3-4ede-bca2-74aa2ccb54b6"),
        "guest_id": uuid.UUID("d08327d8-f928-4c37-8be3-87b93c90ac56"),
        "utm_source": "facebook",
        "utm_medium": "online",
        "last_event_type": "AppointmentGroup.Created",
        "last_event_at": datetime(2024, 7, 25, 14, 52, 6, 769417, tzinfo=UTC),
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }
    [row] = projected.rows["appointments"]
    assert "progress" not in row and "equipment_id" not in row
    assert row["appointment_id"] == uuid.UUID("ce5dd625-2bef-4b93-9418-a54bee1d36d3")
    assert row["invoice_item_id"] == uuid.UUID("7d05cb41-0a36-4966-90ad-56bde1c6e4a4")
    assert row["service_id"] == uuid.UUID("acedc3fc-38cf-48f9-ae5c-61b81649d841")
    assert row["service_name"] == "Laser Hair - Male"
    assert row["service_duration_minutes"] == 60  # service_duration_in_minutes
    assert row["therapist_id"] == uuid.UUID("79ef653b-9dbf-40c4-b457-6fee1ca0eaf5")
    assert row["therapist_name"] == "DebashisTest TripathyTest"
    assert (row["start_time"], row["end_time"]) == (
        datetime(2024, 7, 25, 16, 15),
        datetime(2024, 7, 25, 17, 15),
    )
    assert (row["start_time_in_center"], row["end_time_in_center"]) == (
        datetime(2024, 7, 25, 9, 15),
        datetime(2024, 7, 25, 10, 15),
    )
    assert row["room_id"] == uuid.UUID("a35dbd63-fdc2-4dea-aeb0-eadb222796bb")
    assert row["room_name"] == "Roomsacred Hours" and row["equipment_name"] is None
    assert (row["has_add_ons"], row["is_add_on"], row["is_recurring"]) == (False, False, False)
    assert (row["appointment_type"], row["therapist_request_type"]) == (2, 0)
    assert (row["appointment_group_id"], row["invoice_id"], row["center_id"]) == (
        group["appointment_group_id"],
        group["invoice_id"],
        group["center_id"],
    )
    assert (row["invoice_number"], row["status"]) == ("8086", "booked")
    assert row["last_event_type"] == "AppointmentGroup.Created"


def test_group_status_sample_field_by_field():
    """The Status sample: its integer status code and the "Yes" fee flags as booleans; only
    the columns it carries (no center, guest or utm keys that would wipe Created's)."""
    projected = project(samples.printed_body("appointment-group-status"))
    assert (projected.entity_id, projected.center_id) == (
        "53ef8c73-ded2-48cf-b6b2-0492a0463f9b",
        None,
    )
    assert projected.rows.keys() == {"appointment_groups"}
    [group] = projected.rows["appointment_groups"]
    assert group == {
        "appointment_group_id": uuid.UUID("53ef8c73-ded2-48cf-b6b2-0492a0463f9b"),
        "invoice_id": uuid.UUID("7f7f7bc0-813a-4a24-b518-b8bc67b63de6"),
        "invoice_number": "13024",
        "receipt_number": "0",
        "status": 2,
        "no_show_fee_required": True,
        "cancellation_fee_required": True,
        "last_event_type": "AppointmentGroup.Status",
        "last_event_at": datetime(2022, 3, 22, 9, 54, 53, 348478, tzinfo=UTC),
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }


@pytest.mark.parametrize(
    ("sent", "loaded"),
    [
        ("Yes", True),
        ("No", False),
        ("YES", True),
        ("no", False),
        (" Yes ", True),
        (True, True),
        (False, False),
        ("", None),
        (None, None),
    ],
)
def test_fee_flags_yes_no_booleans_or_none(sent, loaded):
    """The fee flags load from "Yes"/"No" in any case, JSON booleans, and ""/null as NULL."""
    data = json.loads(samples.printed_body("appointment-group-status"))["data"]
    data["is_noshowfeerequired"] = sent
    [group] = project(enveloped("AppointmentGroup.Status", data)).rows["appointment_groups"]
    assert group["no_show_fee_required"] is loaded


def test_fee_flag_that_is_no_boolean_names_the_field_never_the_value():
    """A fee flag Zenoti spells some new way is a schema dead letter naming the field."""
    data = json.loads(samples.printed_body("appointment-group-status"))["data"]
    data["is_cancellationfeerequired"] = "Perhaps-SECRET"
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(enveloped("AppointmentGroup.Status", data))
    assert caught.value.reason.startswith("is_cancellationfeerequired: ")
    assert "(got string)" in caught.value.reason and "SECRET" not in caught.value.reason


def test_invoice_page_as_printed_is_not_json():
    """The Invoice.Closed page as printed (missing comma, cut short) is a parse error saying
    where, and the repair loads."""
    delivery = contract.Delivery("x", 0, "", invoice_printed_body())
    with pytest.raises(errors.NotJson, match="line 33 column 9"):
        envelope.open_delivery(delivery)
    assert invoice_repaired_json()["event_type"] == "Invoice.Closed"


def test_invoice_sample_field_by_field():
    """The repaired Invoice.Closed sample writes the invoice (amounts as exact Decimals,
    invoice_date centre-local), its three items, and closes its appointment."""
    projected = project(json.dumps(invoice_repaired_json()).encode())
    assert projected.entity_id == "7e4e1a62-5982-4b3c-b9ac-da0f122e7ae5"
    assert projected.center_id == uuid.UUID("5528ee09-5321-4153-8ca7-31c78d757dcb")
    [invoice] = projected.rows["invoices"]
    stamp = {
        "last_event_type": "Invoice.Closed",
        "last_event_at": datetime(2022, 3, 11, 14, 22, 43, 384704, tzinfo=UTC),
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }
    assert invoice == {
        "invoice_id": uuid.UUID("7e4e1a62-5982-4b3c-b9ac-da0f122e7ae5"),
        "invoice_number": "7448",
        "receipt_number": "R2650",
        "appointment_group_id": uuid.UUID("6849df99-3160-4475-a344-0495d34853fb"),
        "center_id": uuid.UUID("5528ee09-5321-4153-8ca7-31c78d757dcb"),
        "guest_id": uuid.UUID("464d1eea-e19a-4880-ae4c-c2973b395981"),
        "invoice_date": datetime(2022, 3, 11, 8, 0),
        "is_closed": True,
        "is_refund": False,
        "is_locked": True,
        "currency_id": 0,
        "net_price": Decimal(488),
        "tax": Decimal(0),
        "rounding_adjustment": Decimal(0),
        "sum_total": Decimal(488),
        **stamp,
    }
    items = {row["invoice_item_id"]: row for row in projected.rows["invoice_items"]}
    assert len(items) == 3
    assert items[uuid.UUID("14ad8aac-cedc-47b0-af9c-5f71d028a529")] == {
        "invoice_item_id": uuid.UUID("14ad8aac-cedc-47b0-af9c-5f71d028a529"),
        "invoice_id": invoice["invoice_id"],
        "item_id": uuid.UUID("d1894a6a-81c1-416b-9a9d-a94c8753f96f"),
        "item_name": "17product'",
        "item_type": 2,
        "item_code": "awdsfd",
        "quantity": Decimal(1),
        "currency_id": 148,
        "price_sales": Decimal(88),
        "price_tax": Decimal(0),
        "price_final": Decimal(88),
        "price_discount": Decimal(12),
        "sold_by_id": uuid.UUID("62ba6081-329e-4135-9c90-e4bc8ee35772"),
        "therapist_name": "Henry Peterson",
        **stamp,
    }
    assert sum(row["price_final"] for row in items.values()) == invoice["sum_total"]
    [appointment] = projected.rows["appointments"]
    assert not {"progress", "room_id", "equipment_id"} & appointment.keys()  # not sent
    assert appointment["appointment_id"] == uuid.UUID("044a689a-9e0f-47e6-82b7-93c6fbe0c845")
    assert appointment["invoice_item_id"] == uuid.UUID("aee902a5-ee52-4d1a-b16e-ceff7b1c6ae7")
    assert appointment["service_duration_minutes"] == 195
    assert appointment["therapist_id"] == uuid.UUID("62ba6081-329e-4135-9c90-e4bc8ee35772")
    assert appointment["start_time"] == datetime(2022, 3, 11, 2, 30)
    assert appointment["room_name"] == "Room3" and appointment["equipment_name"] is None
    assert (appointment["appointment_type"], appointment["therapist_request_type"]) == (2, 3)
    assert (appointment["invoice_id"], appointment["invoice_number"]) == (
        invoice["invoice_id"],
        "7448",
    )
    assert appointment["appointment_group_id"] == invoice["appointment_group_id"]
    assert (appointment["center_id"], appointment["status"]) == (invoice["center_id"], "closed")
    assert appointment["last_event_type"] == "Invoice.Closed"


def test_no_personal_data_in_any_row():
    """The guest's names, phone and email never reach a column; only guest ids do."""
    secrets = ("test", "membership", "+91 9885117036", "Abc", "aa@swd.wed")
    bodies = (
        json.dumps(invoice_repaired_json()).encode(),
        samples.printed_body("appointment-group-created"),
    )
    for body in bodies:
        for rows in project(body).rows.values():
            for row in rows:
                assert not set(secrets) & {v for v in row.values() if isinstance(v, str)}


def test_invoice_amounts_exact_is_closed_as_sent_and_missing_parts_null():
    """Amounts keep every digit (never a float), is_closed false stays false, and an invoice
    without guest, totals, items or appointments still loads."""
    body = invoice_event(
        "i1",
        "2022-03-11T14:22:43Z",
        is_closed=False,
        guest=None,
        total_price={"sum_total": 12.345, "net_price": "0.10"},
        invoice_items=[],
        appointments=[],
    )
    projected = project(body)
    [invoice] = projected.rows["invoices"]
    assert invoice["is_closed"] is False and invoice["guest_id"] is None
    assert (invoice["sum_total"], invoice["net_price"]) == (Decimal("12.345"), Decimal("0.10"))
    assert invoice["tax"] is None
    assert projected.rows["invoice_items"] == [] and projected.rows["appointments"] == []


NOT_A_GUID = "1832089f-d2bc-65t3-bc61-efda4a6e2828"  # like the `-65t3-` sample
NIL_GUID = "00000000-0000-0000-0000-000000000000"


def sample_data(event_type: str) -> dict:
    if event_type == "Invoice.Closed":
        return invoice_repaired_json()["data"]
    page = {
        "AppointmentGroup.Created": "appointment-group-created",
        "AppointmentGroup.Status": "appointment-group-status",
    }[event_type]
    return json.loads(samples.printed_body(page))["data"]


@pytest.mark.parametrize(
    ("event_type", "path", "bad"),
    [
        ("Invoice.Closed", ("invoice", "id"), NOT_A_GUID),
        ("Invoice.Closed", ("invoice", "id"), NIL_GUID),
        ("Invoice.Closed", ("invoice", "invoice_items", 0, "invoice_item_id"), NOT_A_GUID),
        ("Invoice.Closed", ("invoice", "invoice_items", 0, "invoice_item_id"), NIL_GUID),
        ("Invoice.Closed", ("invoice", "invoice_items", 1, "sale_by_id"), NOT_A_GUID),
        ("Invoice.Closed", ("invoice", "appointments", 0, "id"), NIL_GUID),
        ("AppointmentGroup.Created", ("appointment_group_id",), NOT_A_GUID),
        ("AppointmentGroup.Created", ("appointment_group_id",), NIL_GUID),
        ("AppointmentGroup.Created", ("appointments", 0, "therapist_id"), NOT_A_GUID),
        ("AppointmentGroup.Created", ("guest", "id"), NOT_A_GUID),
        ("AppointmentGroup.Status", ("appointment_group_id",), NOT_A_GUID),
        ("AppointmentGroup.Status", ("appointment_group_id",), NIL_GUID),
    ],
)
def test_bad_or_nil_guid_is_a_schema_error_naming_the_field(event_type, path, bad):
    """An id that is no GUID, or the nil GUID where a row's key is needed, is a schema dead
    letter naming the field by its path (never the value); the same body repaired loads."""
    data = sample_data(event_type)
    target = data
    for key in path[:-1]:
        target = target[key]
    good, target[path[-1]] = target[path[-1]], bad
    with pytest.raises(errors.SchemaMismatch) as caught:
        project(enveloped(event_type, data))
    where = ".".join(map(str, path))
    assert caught.value.reason == f"{where}: Not a valid GUID (got string)"
    target[path[-1]] = good
    assert project(enveloped(event_type, data)).rows


def test_nil_guid_outside_keys_means_none():
    """The nil GUID and "" in an id that is no key (therapist, guest, seller) load as NULL."""
    data = sample_data("AppointmentGroup.Created")
    data["appointments"][0]["therapist_id"] = NIL_GUID
    data["guest"]["id"] = ""
    projected = project(enveloped("AppointmentGroup.Created", data))
    assert projected.rows["appointments"][0]["therapist_id"] is None
    assert projected.rows["appointment_groups"][0]["guest_id"] is None
    data = sample_data("Invoice.Closed")
    data["invoice"]["invoice_items"][0]["sale_by_id"] = NIL_GUID.upper()
    [first, *_] = project(enveloped("Invoice.Closed", data)).rows["invoice_items"]
    assert first["sold_by_id"] is None


def test_each_event_type_projects_one_key_set_per_table():
    """Rows of one event type always carry the same columns (one upsert statement each), even
    when values are missing or none."""
    created = json.loads(samples.printed_body("appointment-group-created"))["data"]
    sparse = {
        "appointment_group_id": created["appointment_group_id"],
        "appointments": [{"id": created["appointments"][0]["id"]}],
    }
    for full, thin in (
        (
            enveloped("AppointmentGroup.Created", created),
            enveloped("AppointmentGroup.Created", sparse),
        ),
        (
            invoice_event("i1", "2022-03-11T14:22:43Z"),
            samples.envelope(
                "Invoice.Closed",
                {
                    "invoice": {
                        "id": str(uuid.uuid4()),
                        "invoice_items": [{"invoice_item_id": str(uuid.uuid4())}],
                        "appointments": [{"id": str(uuid.uuid4())}],
                    }
                },
                "i2",
                "2022-03-11T14:22:43Z",
            ),
        ),
    ):
        a, b = project(full).rows, project(thin).rows
        assert {t: {tuple(r) for r in rows} for t, rows in a.items()} == {
            t: {tuple(r) for r in rows} for t, rows in b.items()
        }
