"""Invoices, invoice items, appointment groups and their appointments in real Postgres."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime
from decimal import Decimal

import psycopg
import pytest

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, state, write
from tests.unit import test_invoices_and_groups as pages

INVOICE_ID = "7e4e1a62-5982-4b3c-b9ac-da0f122e7ae5"
INVOICE_APPOINTMENT = "044a689a-9e0f-47e6-82b7-93c6fbe0c845"
GROUP_ID = "883ce749-12a8-497b-bc50-2c3206c50e91"
GROUP_APPOINTMENT = "ce5dd625-2bef-4b93-9418-a54bee1d36d3"
CREATED_AT = "2024-07-25T14:52:06.769417Z"
STATUS_AT = "2024-07-25T15:00:00.1234567Z"
LATER_AT = "2024-07-25T16:30:00Z"


def group_created(delivery_id: str = "gc", timestamp: str = CREATED_AT, **changes) -> bytes:
    data = json.loads(samples.printed_body("appointment-group-created"))["data"]
    data.update(changes)
    return samples.envelope("AppointmentGroup.Created", data, delivery_id, timestamp)


def group_status(delivery_id: str, timestamp: str, **changes) -> bytes:
    """A Status event for the Created sample's group (the Status sample's own group differs)."""
    data = json.loads(samples.printed_body("appointment-group-status"))["data"]
    data.update(appointment_group_id=GROUP_ID, **changes)
    return samples.envelope("AppointmentGroup.Status", data, delivery_id, timestamp)


def appointment_event(event_type: str, delivery_id: str, timestamp: str, **changes) -> bytes:
    """A Started/Completed envelope about the Created sample's appointment."""
    data = samples.repaired_json(samples.page_of(event_type))
    data["appointments"][0].update(id=GROUP_APPOINTMENT, **changes)
    return samples.envelope(event_type, data, delivery_id, timestamp)


def one(url: str, query: str) -> dict:
    """The single row a query returns, by column name."""
    with psycopg.connect(url) as conn:
        cursor = conn.execute(query)
        [row] = cursor.fetchall()
        return state(dict(zip([c.name for c in cursor.description], row, strict=True)))


def test_group_created_lands_field_by_field(pool, settings):
    """The Created sample (as printed) writes its group row and books its appointment, with
    uuid, integer, boolean and centre-local timestamp columns, and an `events` row."""
    d = delivery(samples.printed_body("appointment-group-created"))
    assert write(pool, d) == {d.ingest_id: "processed"}
    url = settings.database_url
    group = one(url, "SELECT * FROM appointment_groups")
    assert group.pop("updated_at") is not None and group.pop("last_received_at") is not None
    assert group == {
        "appointment_group_id": uuid.UUID(GROUP_ID),
        "invoice_id": uuid.UUID("e8cedcb5-58b7-42bf-8024-7184c877aa03"),
        "invoice_number": "8086",
        "invoice_number_prefix": "BEL1",
        "receipt_number": None,
        "center_id": uuid.UUID("1aab4fd2-2ff3-4ede-bca2-74aa2ccb54b6"),
        "guest_id": uuid.UUID("d08327d8-f928-4c37-8be3-87b93c90ac56"),
        "utm_source": "facebook",
        "utm_medium": "online",
        "status": None,
        "no_show_fee_required": None,
        "cancellation_fee_required": None,
        "last_event_type": "AppointmentGroup.Created",
        "last_event_at": datetime.fromisoformat(CREATED_AT),
        "last_ingest_id": uuid.UUID(d.ingest_id),
    }
    appointment = one(url, "SELECT * FROM appointments")
    assert appointment["appointment_id"] == uuid.UUID(GROUP_APPOINTMENT)
    assert (appointment["status"], appointment["progress"]) == ("booked", None)
    assert appointment["start_time"] == datetime(2024, 7, 25, 16, 15)
    assert appointment["start_time_in_center"] == datetime(2024, 7, 25, 9, 15)
    assert appointment["end_time_in_center"] == datetime(2024, 7, 25, 10, 15)
    assert appointment["service_duration_minutes"] == 60
    assert appointment["therapist_id"] == uuid.UUID("79ef653b-9dbf-40c4-b457-6fee1ca0eaf5")
    assert appointment["room_id"] == uuid.UUID("a35dbd63-fdc2-4dea-aeb0-eadb222796bb")
    assert appointment["appointment_group_id"] == uuid.UUID(GROUP_ID)
    assert appointment["center_id"] == group["center_id"]
    assert fetch(url, "SELECT event_type, resource, entity_id, center_id::text FROM events") == [
        (
            "AppointmentGroup.Created",
            "AppointmentGroup",
            GROUP_ID,
            "1aab4fd2-2ff3-4ede-bca2-74aa2ccb54b6",
        )
    ]


def test_group_status_lands_field_by_field(pool, settings):
    """The Status sample (as printed) writes its integer status and the fee flags as booleans;
    the `events` row is about its group."""
    d = delivery(samples.printed_body("appointment-group-status"))
    assert write(pool, d) == {d.ingest_id: "processed"}
    group = one(settings.database_url, "SELECT * FROM appointment_groups")
    assert group["appointment_group_id"] == uuid.UUID("53ef8c73-ded2-48cf-b6b2-0492a0463f9b")
    assert group["invoice_id"] == uuid.UUID("7f7f7bc0-813a-4a24-b518-b8bc67b63de6")
    assert (group["invoice_number"], group["receipt_number"]) == ("13024", "0")
    assert (group["status"], group["no_show_fee_required"], group["cancellation_fee_required"]) == (
        2,
        True,
        True,
    )
    assert (group["center_id"], group["guest_id"]) == (None, None)
    assert group["last_event_type"] == "AppointmentGroup.Status"
    assert fetch(settings.database_url, "SELECT entity_id FROM events") == [
        ("53ef8c73-ded2-48cf-b6b2-0492a0463f9b",)
    ]


def test_invoice_lands_field_by_field(pool, settings):
    """The repaired Invoice.Closed sample writes its invoice (numeric amounts, centre-local
    invoice_date), three items and its closed appointment."""
    d = delivery(json.dumps(pages.invoice_repaired_json()).encode())
    assert write(pool, d) == {d.ingest_id: "processed"}
    url = settings.database_url
    invoice = one(url, "SELECT * FROM invoices")
    assert invoice["invoice_id"] == uuid.UUID(INVOICE_ID)
    assert (invoice["invoice_number"], invoice["receipt_number"]) == ("7448", "R2650")
    assert invoice["appointment_group_id"] == uuid.UUID("6849df99-3160-4475-a344-0495d34853fb")
    assert invoice["center_id"] == uuid.UUID("5528ee09-5321-4153-8ca7-31c78d757dcb")
    assert invoice["guest_id"] == uuid.UUID("464d1eea-e19a-4880-ae4c-c2973b395981")
    assert invoice["invoice_date"] == datetime(2022, 3, 11, 8, 0)
    assert (invoice["is_closed"], invoice["is_refund"], invoice["is_locked"]) == (True, False, True)
    assert (
        invoice["currency_id"],
        invoice["net_price"],
        invoice["tax"],
        invoice["rounding_adjustment"],
        invoice["sum_total"],
    ) == (0, Decimal(488), Decimal(0), Decimal(0), Decimal(488))
    assert fetch(
        url,
        "SELECT invoice_item_id::text, invoice_id::text, item_id::text, item_name,"
        " item_type, item_code, quantity, currency_id, price_sales, price_tax,"
        " price_final, price_discount, sold_by_id::text, therapist_name"
        " FROM invoice_items ORDER BY item_type",
    ) == [
        (
            "aee902a5-ee52-4d1a-b16e-ceff7b1c6ae7",
            INVOICE_ID,
            "f2032f7a-033a-4806-afe0-e7c1a927d125",
            "45 minutes cardio vascular test",
            0,
            "45m1",
            1,
            148,
            0,
            0,
            0,
            0,
            "62ba6081-329e-4135-9c90-e4bc8ee35772",
            "Henry Peterson",
        ),
        (
            "14ad8aac-cedc-47b0-af9c-5f71d028a529",
            INVOICE_ID,
            "d1894a6a-81c1-416b-9a9d-a94c8753f96f",
            "17product'",
            2,
            "awdsfd",
            1,
            148,
            88,
            0,
            88,
            12,
            "62ba6081-329e-4135-9c90-e4bc8ee35772",
            "Henry Peterson",
        ),
        (
            "a48d3728-742c-480b-bb72-4bc302ee29c6",
            INVOICE_ID,
            "07ca7206-14db-490a-87c7-a1fd22de3bd9",
            "PD-134509",
            3,
            "jhge",
            1,
            148,
            400,
            0,
            400,
            0,
            "62ba6081-329e-4135-9c90-e4bc8ee35772",
            "Henry Peterson",
        ),
    ]
    appointment = one(url, "SELECT * FROM appointments")
    assert appointment["appointment_id"] == uuid.UUID(INVOICE_APPOINTMENT)
    assert (appointment["status"], appointment["progress"]) == ("closed", None)
    assert appointment["invoice_id"] == uuid.UUID(INVOICE_ID)
    assert appointment["invoice_item_id"] == uuid.UUID("aee902a5-ee52-4d1a-b16e-ceff7b1c6ae7")
    assert appointment["start_time"] == datetime(2022, 3, 11, 2, 30)
    assert (appointment["service_duration_minutes"], appointment["room_name"]) == (195, "Room3")
    assert fetch(url, "SELECT event_type, resource, entity_id FROM events") == [
        ("Invoice.Closed", "Invoice", INVOICE_ID)
    ]


def test_invoice_page_as_printed_is_a_parse_dead_letter(pool, settings):
    """The Invoice.Closed page delivered as printed is kept, dead, failure_class parse,
    and writes nothing else."""
    d = delivery(pages.invoice_printed_body())
    assert write(pool, d) == {d.ingest_id: "dead"}
    [(failure_class, error, body)] = fetch(
        settings.database_url, "SELECT failure_class, error, body FROM webhook_events"
    )
    assert failure_class == "parse" and error.startswith("body is not valid JSON")
    assert bytes(body) == pages.invoice_printed_body()
    assert fetch(settings.database_url, "SELECT count(*) FROM invoices") == [(0,)]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (lambda: group_created(appointment_group_id=pages.NOT_A_GUID), "appointment_group_id"),
        (lambda: pages.invoice_event("i1", CREATED_AT, id=pages.NOT_A_GUID), "invoice.id"),
    ],
)
def test_invalid_guid_is_a_schema_dead_letter_and_the_rest_lands(event, field, pool, settings):
    """A key that is no GUID dead-letters its delivery with a reason naming the field; a good
    delivery in the same batch lands."""
    bad, good = delivery(event()), delivery(group_status("s1", STATUS_AT))
    assert write(pool, bad, good) == {bad.ingest_id: "dead", good.ingest_id: "processed"}
    [(failure_class, error)] = fetch(
        settings.database_url, "SELECT failure_class, error FROM webhook_events WHERE status='dead'"
    )
    assert (failure_class, error) == ("schema", f"{field}: Not a valid GUID (got string)")


def group_state(url: str) -> list[tuple]:
    return fetch(
        url,
        "SELECT appointment_group_id::text, invoice_number, receipt_number, status,"
        " no_show_fee_required, cancellation_fee_required, last_event_type"
        " FROM appointment_groups",
    )


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_group_statuses_converge_in_any_order(order, pool, settings):
    """An older Status, a newer one and a redelivery of the older, one at a time in any
    order: the newer Status's values; the redelivery is a duplicate."""
    events = [
        group_status("s1", STATUS_AT, appointment_group_status=1, is_noshowfeerequired="No"),
        group_status(
            "s2",
            LATER_AT,
            appointment_group_status=2,
            receipt_number="R9",
            is_cancellationfeerequired="No",
        ),
        group_status("s1", STATUS_AT, appointment_group_status=1, is_noshowfeerequired="No"),
    ]
    statuses = [next(iter(write(pool, delivery(events[i])).values())) for i in order]
    assert sorted(statuses) == ["duplicate", "processed", "processed"]
    assert group_state(settings.database_url) == [
        (GROUP_ID, "13024", "R9", 2, True, False, "AppointmentGroup.Status")
    ]


def test_created_then_status_keeps_both_column_sets(pool, settings):
    """In order, Status updates only what it carries: Created's center, guest and utm stay."""
    write(pool, delivery(group_created()))
    write(pool, delivery(group_status("s1", STATUS_AT)))
    group = one(settings.database_url, "SELECT * FROM appointment_groups")
    assert (group["status"], group["no_show_fee_required"]) == (2, True)
    assert group["guest_id"] == uuid.UUID("d08327d8-f928-4c37-8be3-87b93c90ac56")
    assert (group["utm_source"], group["invoice_number_prefix"]) == ("facebook", "BEL1")


def test_status_then_older_created_keeps_both_column_sets(pool, settings):
    """Out of order (Status first), the older Created's own columns should still land."""
    write(pool, delivery(group_status("s1", STATUS_AT)))
    write(pool, delivery(group_created()))
    group = one(settings.database_url, "SELECT * FROM appointment_groups")
    assert group["guest_id"] == uuid.UUID("d08327d8-f928-4c37-8be3-87b93c90ac56")


def invoice_state(url: str) -> list[tuple]:
    return fetch(
        url,
        "SELECT i.is_closed, i.sum_total, i.last_event_type, it.invoice_item_id"
        "::text, it.price_final FROM invoices i JOIN invoice_items it"
        " ON it.invoice_id = i.invoice_id AND it.last_ingest_id = i.last_ingest_id"
        " ORDER BY 4",
    )


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_invoice_converges_in_any_order(order, pool, settings):
    """An invoice closed, then closed again with a line dropped and new totals, plus a
    redelivery, in any order: the newer version; its current lines are those sharing the
    invoice's last_ingest_id."""
    items = pages.invoice_repaired_json()["data"]["invoice"]["invoice_items"]
    events = [
        pages.invoice_event("i1", CREATED_AT),
        pages.invoice_event(
            "i2",
            LATER_AT,
            is_closed=False,
            invoice_items=items[1:],
            total_price={"sum_total": 488.5},
        ),
        pages.invoice_event("i1", CREATED_AT),
    ]
    for index in order:
        write(pool, delivery(events[index]))
    assert invoice_state(settings.database_url) == [
        (False, Decimal("488.5"), "Invoice.Closed", "14ad8aac-cedc-47b0-af9c-5f71d028a529", 88),
        (False, Decimal("488.5"), "Invoice.Closed", "a48d3728-742c-480b-bb72-4bc302ee29c6", 400),
    ]
    assert fetch(settings.database_url, "SELECT count(*) FROM invoice_items") == [(3,)]


def appointment_state(url: str) -> tuple:
    [row] = fetch(
        url,
        "SELECT status, progress, start_time_in_center, therapist_name,"
        " last_event_type FROM appointments",
    )
    return row


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_booked_started_completed_converge_in_any_order(order, pool, settings):
    """Created (booked), then Started and Completed enveloped at later times, in any order:
    completed with progress 2 and Completed's values. (Created's own centre-local times are
    lost when it comes last: see test_status_then_older_created_keeps_both_column_sets.)"""
    events = [
        group_created(),
        appointment_event("Appointment.Started", "s1", STATUS_AT, therapist_name="A"),
        appointment_event("Appointment.Completed", "c1", LATER_AT, therapist_name="B"),
    ]
    for index in order:
        write(pool, delivery(events[index]))
    status, progress, _, therapist, last = appointment_state(settings.database_url)
    assert (status, progress, therapist, last) == ("completed", 2, "B", "Appointment.Completed")


@pytest.mark.parametrize("started_first", [True, False])
def test_started_outranks_created_at_the_same_time(started_first, pool, settings):
    """Created and Started with the same event time: Started wins (Created has no progress)."""
    events = [
        group_created(),
        appointment_event("Appointment.Started", "s1", CREATED_AT, therapist_name="A"),
    ]
    for body in reversed(events) if started_first else events:
        write(pool, delivery(body))
    status, progress, _, therapist, _ = appointment_state(settings.database_url)
    assert (status, progress, therapist) == ("started", 1, "A")


def test_created_times_survive_started_and_invoice_closes(pool, settings):
    """In order: booked → started → invoice closed. The invoice sets status closed and keeps
    progress (it carries none); the centre-local times stay from Created."""
    invoice = pages.invoice_repaired_json()["data"]
    invoice["invoice"]["appointments"][0]["id"] = GROUP_APPOINTMENT
    write(pool, delivery(group_created()))
    write(pool, delivery(appointment_event("Appointment.Started", "s1", STATUS_AT)))
    write(pool, delivery(samples.envelope("Invoice.Closed", invoice, "i1", LATER_AT)))
    status, progress, in_center, therapist, last = appointment_state(settings.database_url)
    assert (status, progress, in_center, therapist, last) == (
        "closed",
        1,
        datetime(2024, 7, 25, 9, 15),
        "Henry Peterson",
        "Invoice.Closed",
    )


def test_created_then_started_in_one_batch(pool, settings):
    """Created and Started in the same batch upsert as two statements (different columns),
    and the newer one wins."""
    created, started = (
        group_created(),
        appointment_event("Appointment.Started", "s1", STATUS_AT, therapist_name="A"),
    )
    write(pool, delivery(started), delivery(created))
    status, progress, _, therapist, _ = appointment_state(settings.database_url)
    assert (status, progress, therapist) == ("started", 1, "A")


@pytest.mark.xfail(
    strict=True,
    reason="framework: a bare body (no event_timestamp) always "
    "orders before an enveloped one, whatever its progress",
)
def test_bare_completed_after_created_completes(pool, settings):
    """A bare Completed (as its sample is printed) received after the group's enveloped
    Created should complete the appointment."""
    write(pool, delivery(group_created(), received_us=1_000))
    completed = samples.repaired_json("appointment-completed")
    completed["appointments"][0]["id"] = GROUP_APPOINTMENT
    write(pool, delivery(json.dumps(completed).encode(), "Appointment.Completed", 2_000))
    status, progress, *_ = appointment_state(settings.database_url)
    assert (status, progress) == ("completed", 2)


def test_created_and_status_in_one_batch_keep_both_column_sets(pool, settings):
    """Created and a newer Status in the same batch should end as they do one at a time."""
    write(pool, delivery(group_created()), delivery(group_status("s1", STATUS_AT)))
    group = one(settings.database_url, "SELECT * FROM appointment_groups")
    assert (group["status"], group["utm_source"]) == (2, "facebook")
