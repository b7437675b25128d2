"""Guest membership and package events into real Postgres: the tables, the event log, order."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, state, write
from tests.unit.test_memberships_and_packages import BROKEN_PAGES, PAGES, printed, repaired
from zenoti_ingest import contract

MEMBERSHIP = "01192853-a6b5-4ff4-b299-e36b9efe61ac"  # the bare pages' membership
PACKAGE = "fe645486-7165-41de-8948-7f476c856824"  # Creation's, Redemption's and Reversal's
T0 = 1_700_000_000_000_000  # receipt time of the first delivery, in microseconds


def bare(name: str, received_us: int, **changes) -> contract.Delivery:
    """A bare page's body, as a delivery on its event type's URL."""
    data = json.loads(repaired(name))
    data.update(changes)
    return delivery(json.dumps(data).encode(), PAGES[name], received_us)


def enveloped(
    name: str, delivery_id: str, minute: int, received_us: int = T0, **changes
) -> contract.Delivery:
    """A page's data in an envelope stamped 2024-01-01 00:<minute>, as Zenoti documents it."""
    page = json.loads(repaired(name))
    data = page.get("data", page)
    data.update(changes)
    when = f"2024-01-01T00:{minute:02d}:00.0000001Z"
    return delivery(samples.envelope(PAGES[name], data, delivery_id, when), "", received_us)


def redelivered(d: contract.Delivery) -> contract.Delivery:
    """The same body on the same URL, accepted again later (a new ingest id)."""
    return delivery(d.body, d.path_hint, d.received_at_us + 1_000_000)


def one_by_one(pool, *deliveries) -> None:
    """Each delivery in its own batch, all processed."""
    for d in deliveries:
        assert write(pool, d) == {d.ingest_id: "processed"}


def table_row(url: str, table: str, key: str, value: str) -> dict:
    """A row as JSON: comparable as a whole."""
    [(row,)] = fetch(url, f"SELECT to_jsonb(t) FROM {table} t WHERE {key} = %(v)s", {"v": value})
    return state(row)


def typed_row(url: str, table: str, key: str, value: str) -> dict:
    """A row with Python values as psycopg reads them (uuid, Decimal, datetime)."""
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {key} = %(v)s", {"v": value})
        names = [c.name for c in cursor.description]
        [values] = cursor.fetchall()
    return state(dict(zip(names, values, strict=True)))


def test_membership_created_lands_field_by_field(pool, settings):
    """Created's envelope lands as one typed row: uuid ids, exact numeric amounts,
    centre-local timestamps, status active, the envelope's time as last_event_at."""
    d = enveloped("guest-membership-created", "658406afba62cd22dd23b663", 0)
    one_by_one(pool, d)
    row = typed_row(
        settings.database_url,
        "guest_memberships",
        "user_membership_id",
        "c602e0d1-f9d2-4f37-809e-ceb882e59af4",
    )
    updated_at = row.pop("updated_at")
    assert updated_at is not None
    assert row == {
        "user_membership_id": uuid.UUID("c602e0d1-f9d2-4f37-809e-ceb882e59af4"),
        "group_user_membership_id": uuid.UUID("f86e948e-db35-4e33-9f39-4fe6cd4ed409"),
        "guest_id": uuid.UUID("5dbd3f94-9961-41eb-a7b0-480a8c49db4f"),
        "membership_id": uuid.UUID("365725fe-9a7b-4fd1-8990-cc33108bbb83"),
        "membership_name": "Test",
        "membership_type": 1,
        "center_id": uuid.UUID("b787e08d-f393-4a26-a332-6050c8848d2a"),
        "status": "active",
        "status_code": 1,
        "recurrence_status": -1,
        "member_code": None,
        "invoice_id": uuid.UUID("f86e948e-db35-4e33-9f39-4fe6cd4ed409"),
        "invoice_number": "BTS1325",
        "purchase_date": datetime(2023, 12, 21),
        "price_sales": Decimal(0),
        "price_tax": Decimal(0),
        "price_final": Decimal(0),
        "expiry_date": datetime(2024, 12, 20),
        "next_collection_date": None,
        "grace_period_date": None,
        "grace_period_days": 0,
        "credit_balance": Decimal("33.33"),
        "is_refunded": False,
        "freeze_start_date": None,
        "freeze_end_date": None,
        "freeze_fee": None,
        "unfrozen_at": None,
        "cancel_initiated_date": None,
        "cancel_date": None,
        "termination_date": None,
        "cancel_reason": None,
        "last_event_type": "Guest.Membership.Created",
        "last_event_at": datetime(2024, 1, 1, tzinfo=UTC),
        "last_received_at": datetime.fromtimestamp(T0 / 1e6, UTC),
        "last_ingest_id": uuid.UUID(d.ingest_id),
    }


def test_bare_membership_pages_in_receipt_order(pool, settings):
    """Freeze, Unfreeze, Cancelled and Reinstate, bare and one at a time: each writes its own
    columns, the last received sets the status, and none blanks another's columns."""
    names = [
        "guest-membership-freeze",
        "guest-membership-unfreeze",
        "guest-membership-cancelled",
        "guest-membership-reinstate",
    ]
    deliveries = [bare(name, T0 + n) for n, name in enumerate(names)]
    one_by_one(pool, *deliveries)
    row = typed_row(settings.database_url, "guest_memberships", "user_membership_id", MEMBERSHIP)
    assert (row["status"], row["last_event_type"], row["last_event_at"]) == (
        "active",
        "Guest.Membership.Reinstate",
        None,
    )
    assert (row["freeze_start_date"], row["freeze_end_date"], row["freeze_fee"]) == (
        datetime(2021, 12, 13, 20),
        datetime(2021, 12, 18, 20),
        Decimal(20),
    )
    assert row["unfrozen_at"] == datetime.fromtimestamp((T0 + 1) / 1e6, UTC)
    assert (row["cancel_date"], row["cancel_reason"]) == (
        datetime(2021, 12, 14, 20),
        "Membership Cancellation Reason",
    )
    assert (row["membership_name"], row["price_final"], row["invoice_number"]) == (
        "10- Massages - mem",
        Decimal(1000),
        "RR16364",
    )
    assert row["guest_id"] is None  # no bare page carries it
    assert row["last_ingest_id"] == uuid.UUID(deliveries[-1].ingest_id)


def test_package_pages_land_field_by_field(pool, settings):
    """Creation, Redemption and Reversal of one package, one at a time: the balances from
    Creation stay, the rest is the newest's; Status and Validity Update land on theirs."""
    names = [
        "guest-package-creation",
        "guest-package-redemption",
        "guest-package-redemption-reversal",
        "guest-package-status-update",
        "guest-package-validity-update",
    ]
    deliveries = [bare(name, T0 + n) for n, name in enumerate(names)]
    one_by_one(pool, *deliveries)
    row = typed_row(settings.database_url, "guest_packages", "user_package_id", PACKAGE)
    assert row.pop("updated_at") is not None
    assert row == {
        "user_package_id": uuid.UUID(PACKAGE),
        "guest_id": None,
        "package_id": uuid.UUID("e19e0f53-74d3-46b7-bc87-bef8fbc185c8"),
        "package_name": "15 min facial package",
        "package_type": 0,
        "center_id": uuid.UUID("a11f578a-1b81-4de0-8834-915f79e5362b"),
        "status_code": 1,
        "package_state": 2,
        "invoice_id": uuid.UUID("4ed8572b-daaf-496a-8e36-aa27e8399917"),
        "invoice_number": "RR16674",
        "purchase_date": datetime(2022, 3, 2, 5, 26, 34),
        "price_sales": Decimal(0),
        "price_tax": Decimal(0),
        "price_final": Decimal(110),
        "start_date": datetime(2022, 3, 2),
        "end_date": datetime(2022, 4, 1),
        "end_date_with_grace": datetime(2022, 4, 26),
        "never_expires": False,
        "expiration_days": 30,
        "start_validity_at_first_redemption": False,
        "has_first_redemption": False,
        "completed_schedules": 1,
        "next_schedule_date": datetime(2022, 3, 3, 20),
        "is_refunded": False,
        "services_total": 5,
        "services_used": 0,
        "services_balance": 4,
        "balance_amount": Decimal("65.16"),
        "last_event_type": "Guest.Package.RedemptionReversal",
        "last_event_at": None,
        "last_received_at": datetime.fromtimestamp((T0 + 2) / 1e6, UTC),
        "last_ingest_id": uuid.UUID(deliveries[2].ingest_id),
    }
    other = typed_row(
        settings.database_url,
        "guest_packages",
        "user_package_id",
        "0cc3f6bd-680e-4953-bda6-9441565efb52",
    )
    assert (other["last_event_type"], other["has_first_redemption"], other["end_date"]) == (
        "Guest.Package.ValidityUpdate",
        True,
        datetime(2022, 4, 1, 9, 55, 25),
    )
    assert other["services_total"] is None  # neither update lists the services


def test_every_page_is_in_the_event_log(pool, settings):
    """All ten pages are processed and kept in `events`, each with its type, resource, entity
    and center, and the body's data whole."""
    deliveries = [
        delivery(repaired(name)) if name == "guest-membership-created" else bare(name, T0 + n)
        for n, name in enumerate(PAGES)
    ]
    assert set(write(pool, *deliveries).values()) == {"processed"}
    logged = fetch(
        settings.database_url,
        "SELECT event_type, resource, entity_id, center_id::text, data FROM events",
    )
    assert sorted(r[0] for r in logged) == sorted(PAGES.values())
    for _, resource, entity_id, center_id, data in logged:
        assert resource == "Guest"  # Created's event_resource is null: the type's first word
        assert entity_id == data.get("user_membership_id", data.get("user_package_id"))
        assert center_id == data["center"]["id"]
    [created] = [r[4] for r in logged if r[0] == "Guest.Membership.Created"]
    assert created["members"][0]["name"] == "amarbir j (Primary)"  # kept in the log only


@pytest.mark.parametrize("name", BROKEN_PAGES)
def test_broken_pages_delivered_as_printed_are_dead_parse(name, pool, settings):
    """A page's body exactly as printed (invalid JSON) is kept byte for byte as a dead
    delivery of failure class parse, saying where it broke; no table row is written."""
    d = delivery(printed(name), PAGES[name])
    assert write(pool, d) == {d.ingest_id: "dead"}
    [(failure_class, error, body)] = fetch(
        settings.database_url, "SELECT failure_class, error, body FROM webhook_events"
    )
    assert failure_class == "parse" and error.startswith("body is not valid JSON")
    assert bytes(body) == printed(name)
    assert fetch(settings.database_url, "SELECT count(*) FROM guest_memberships") == [(0,)]
    assert fetch(settings.database_url, "SELECT count(*) FROM guest_packages") == [(0,)]


def test_a_bad_guid_dead_letters_naming_the_field(pool, settings):
    """A membership whose center id is not a GUID is a schema dead letter naming the field,
    never its value; the same body with the GUID repaired loads."""
    broken = bare(
        "guest-membership-freeze", T0, center={"id": "442af543-6b2c-7677-65t3-4dff40d43987"}
    )
    fixed = bare(
        "guest-membership-freeze", T0 + 1, center={"id": "442af543-6b2c-7677-6573-4dff40d43987"}
    )
    assert write(pool, broken, fixed) == {broken.ingest_id: "dead", fixed.ingest_id: "processed"}
    [(failure_class, error)] = fetch(
        settings.database_url,
        "SELECT failure_class, error FROM webhook_events WHERE status = 'dead'",
    )
    assert (failure_class, error) == ("schema", "center.id: Not a valid GUID (got string)")
    assert fetch(settings.database_url, "SELECT center_id::text FROM guest_memberships") == [
        ("442af543-6b2c-7677-6573-4dff40d43987",)
    ]


def test_redelivery_is_a_duplicate_and_changes_nothing(pool, settings):
    """The same envelope id again, or the same bare body on the same URL, is a duplicate."""
    created = enveloped("guest-membership-created", "m1", 0)
    again = enveloped("guest-membership-created", "m1", 0, T0 + 5, status=9)
    validity = bare("guest-package-validity-update", T0)
    validity_again = bare("guest-package-validity-update", T0 + 9)
    one_by_one(pool, created, validity)
    assert write(pool, again, validity_again) == {
        again.ingest_id: "duplicate",
        validity_again.ingest_id: "duplicate",
    }
    assert fetch(
        settings.database_url, "SELECT status_code, last_ingest_id::text FROM guest_memberships"
    ) == [(1, created.ingest_id)]


def package_updates(package_id: str, tag: str) -> list:
    """Three package events carrying the same columns, oldest first, plus a redelivery."""

    def event(name, delivery_id, minute, **changes):
        return enveloped(
            name, f"{tag}-{delivery_id}", minute, user_package_id=package_id, **changes
        )

    return [
        event(
            "guest-package-validity-update",
            "v1",
            1,
            date={"start": "2022-03-02T00:00:00", "end": "2022-05-01T00:00:00"},
        ),
        event("guest-package-status-update", "s1", 2, user_package_state=3),
        event(
            "guest-package-validity-update",
            "v2",
            3,
            expiration_days=90,
            date={"start": "2022-03-02T00:00:00", "end": "2022-06-01T00:00:00"},
        ),
        event("guest-package-status-update", "s1", 2, user_package_state=3),  # redelivered
    ]


_COMPARED = ("user_package_id", "last_ingest_id", "last_received_at", "updated_at")


def test_package_events_converge_in_any_order(pool, settings):
    """Events that carry the same columns, in every order and with a redelivery, one at a
    time: the row equals the in-order row (the newest event_timestamp wins)."""
    in_order = str(uuid.uuid4())
    one_by_one(pool, *package_updates(in_order, "in-order")[:3])
    expected = table_row(settings.database_url, "guest_packages", "user_package_id", in_order)
    assert (expected["end_date"], expected["expiration_days"]) == ("2022-06-01T00:00:00", 90)
    assert expected["package_state"] == 0  # the newest (a Validity Update) says 0 again
    for n, order in enumerate(itertools.permutations(range(4))):
        package_id = str(uuid.uuid4())
        events = package_updates(package_id, f"p{n}")
        statuses = [write(pool, events[i])[events[i].ingest_id] for i in order]
        assert sorted(statuses) == ["duplicate", "processed", "processed", "processed"]
        row = table_row(settings.database_url, "guest_packages", "user_package_id", package_id)
        assert {k: v for k, v in row.items() if k not in _COMPARED} == {
            k: v for k, v in expected.items() if k not in _COMPARED
        }


def membership_events(membership_id: str, tag: str) -> list:
    """Created, Freeze, Unfreeze, Cancelled, Reinstate of one membership, oldest first."""
    names = [
        "guest-membership-created",
        "guest-membership-freeze",
        "guest-membership-unfreeze",
        "guest-membership-cancelled",
        "guest-membership-reinstate",
    ]
    return [
        enveloped(name, f"{tag}-{n}", n, user_membership_id=membership_id)
        for n, name in enumerate(names)
    ]


_NEWEST_COLUMNS = (
    "status",
    "status_code",
    "membership_name",
    "price_final",
    "invoice_number",
    "credit_balance",
    "expiry_date",
    "center_id",
    "last_event_type",
    "last_event_at",
)


@pytest.mark.parametrize("order", [(4, 3, 2, 1, 0), (2, 0, 4, 1, 3), (1, 4, 0, 3, 2)])
def test_status_and_the_newest_events_columns_converge_in_any_order(order, pool, settings):
    """Out of order, redelivered: the status and every column the newest event carries end
    as in order (an older event never overwrites a newer one)."""
    in_order, shuffled = str(uuid.uuid4()), str(uuid.uuid4())
    one_by_one(pool, *membership_events(in_order, "a"))
    events = membership_events(shuffled, "b")
    for i in order:
        one_by_one(pool, events[i])
    again = redelivered(events[order[0]])
    assert write(pool, again) == {again.ingest_id: "duplicate"}
    expected = table_row(settings.database_url, "guest_memberships", "user_membership_id", in_order)
    row = table_row(settings.database_url, "guest_memberships", "user_membership_id", shuffled)
    assert {c: row[c] for c in _NEWEST_COLUMNS} == {c: expected[c] for c in _NEWEST_COLUMNS}
    assert row["status"] == "active" and row["last_event_type"] == "Guest.Membership.Reinstate"


def test_columns_only_older_events_carry_converge_when_they_arrive_late(pool, settings):
    """Reinstate first, then the older Created, Freeze, Unfreeze, Cancelled: the row should
    still get Created's guest id, Freeze's dates and Cancelled's reason, as in order."""
    in_order, reverse = str(uuid.uuid4()), str(uuid.uuid4())
    one_by_one(pool, *membership_events(in_order, "a"))
    one_by_one(pool, *reversed(membership_events(reverse, "b")))
    expected = table_row(settings.database_url, "guest_memberships", "user_membership_id", in_order)
    row = table_row(settings.database_url, "guest_memberships", "user_membership_id", reverse)
    compared = ("user_membership_id", "last_ingest_id", "last_received_at", "updated_at")
    assert {k: v for k, v in row.items() if k not in compared} == {
        k: v for k, v in expected.items() if k not in compared
    }


def test_one_batch_in_order_keeps_every_events_columns(pool, settings):
    """Created then Freeze of one membership in one batch: the row should have Created's
    guest id and price as well as Freeze's dates, as when written one at a time."""
    created, freeze = membership_events(MEMBERSHIP, "x")[:2]
    assert set(write(pool, created, freeze).values()) == {"processed"}
    row = typed_row(settings.database_url, "guest_memberships", "user_membership_id", MEMBERSHIP)
    assert row["freeze_start_date"] == datetime(2021, 12, 13, 20)
    assert row["guest_id"] == uuid.UUID("5dbd3f94-9961-41eb-a7b0-480a8c49db4f")
