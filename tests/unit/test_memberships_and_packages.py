"""Guest membership and guest package events, parsed the way the sample pages print them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fixtures import samples
from worker.pipeline import envelope, handlers, projection
from worker.schemas import packages, parts
from zenoti_ingest import contract, errors

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
CREATED_AT = "2023-12-21T09:34:39.8025506Z"

# The event type of each page: Created's comes from its envelope, the others' from the URL
# (the names after Created are guesses, see worker/schemas/memberships.py and packages.py).
MEMBERSHIP_PAGES = {
    name: samples.EVENT_TYPES[name]
    for name in (
        "guest-membership-created",
        "guest-membership-freeze",
        "guest-membership-unfreeze",
        "guest-membership-cancelled",
        "guest-membership-reinstate",
    )
}
PACKAGE_PAGES = {
    name: samples.EVENT_TYPES[name]
    for name in (
        "guest-package-creation",
        "guest-package-redemption",
        "guest-package-redemption-reversal",
        "guest-package-status-update",
        "guest-package-validity-update",
    )
}
PAGES = {**MEMBERSHIP_PAGES, **PACKAGE_PAGES}
BROKEN_PAGES = (
    "guest-membership-created",  # cut off inside service_balance
    "guest-membership-unfreeze",  # a comma before the closing brace
    "guest-package-creation",  # cut off inside services
    "guest-package-redemption",  # commas before closing braces
    "guest-package-redemption-reversal",  # the same
)

# The page's breakages, not Zenoti's payload: pages cut off mid-object get the brackets still
# open at the cut; commas before a closing bracket go.
_CLOSINGS = {"guest-membership-created": "}]}}", "guest-package-creation": "}]}"}
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def printed(name: str) -> bytes:
    """The body as printed: from its opening brace to the end of the page (two pages are cut
    off before their closing brace, which samples.printed_body looks for)."""
    lines = samples.page(name).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return "\n".join(lines[start:]).rstrip().encode()


def repaired(name: str) -> bytes:
    """The body with the page's breakages mended; valid JSON."""
    text = printed(name).decode()
    if name in _CLOSINGS:
        text = text.rstrip(",") + _CLOSINGS[name]
    text = _TRAILING_COMMA.sub(r"\1", text)
    json.loads(text)  # fail loudly if a repair is missing
    return text.encode()


def repaired_json(name: str) -> dict:
    return json.loads(repaired(name))


def project(body: bytes, hint: str = "", received: datetime = RECEIVED) -> projection.Projected:
    delivery = contract.Delivery("01900000-0000-7000-8000-000000000001", 0, hint, body)
    event = envelope.open_delivery(delivery)
    applied = projection.Applied(
        event.event_type, event.event_timestamp, received, delivery.ingest_id
    )
    return handlers.project(event, applied)


def row(name: str, body: bytes | None = None) -> dict:
    """The one current-state row a page's event writes."""
    hint = "" if name == "guest-membership-created" else PAGES[name]
    [(table, [written])] = project(body or repaired(name), hint).rows.items()
    assert table == ("guest_memberships" if name in MEMBERSHIP_PAGES else "guest_packages")
    return written


@pytest.mark.parametrize("name", BROKEN_PAGES)
def test_broken_pages_are_not_json_and_repair_to_what_was_meant(name):
    """Each broken page, as printed, is refused as parse saying where; mended, it parses."""
    delivery = contract.Delivery("x", 0, PAGES[name], printed(name))
    with pytest.raises(errors.NotJson, match=r"line \d+ column \d+"):
        envelope.open_delivery(delivery)
    assert repaired_json(name)


@pytest.mark.parametrize("name", sorted(set(PAGES) - set(BROKEN_PAGES)))
def test_the_other_pages_are_valid_json_as_printed(name):
    """The pages not listed as broken need no repair (so the list above is the whole list)."""
    assert printed(name) == repaired(name)


def test_membership_created_loads_field_by_field():
    """Created (an envelope whose event_resource is null, on a cut-off page) fills every
    column it carries, amounts exact, business dates centre-local, status active."""
    data = repaired_json("guest-membership-created")["data"]
    written = row("guest-membership-created")
    assert written == {
        "user_membership_id": uuid.UUID(data["user_membership_id"]),
        "group_user_membership_id": uuid.UUID("f86e948e-db35-4e33-9f39-4fe6cd4ed409"),
        "guest_id": uuid.UUID("5dbd3f94-9961-41eb-a7b0-480a8c49db4f"),
        "membership_id": uuid.UUID("365725fe-9a7b-4fd1-8990-cc33108bbb83"),
        "membership_name": "Test",
        "membership_type": 1,
        "center_id": uuid.UUID("b787e08d-f393-4a26-a332-6050c8848d2a"),
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
        "status": "active",
        "last_event_type": "Guest.Membership.Created",
        "last_event_at": datetime(2023, 12, 21, 9, 34, 39, 802550, tzinfo=UTC),
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }
    assert type(written["credit_balance"]) is Decimal and written["expiry_date"].tzinfo is None


def test_membership_freeze_and_cancelled_load_field_by_field():
    """Freeze and Cancelled write their own dates and the columns every membership event
    carries; neither blanks what it does not carry (guest, price, invoice)."""
    shared = {
        "user_membership_id": uuid.UUID("01192853-a6b5-4ff4-b299-e36b9efe61ac"),
        "group_user_membership_id": uuid.UUID("122df2ee-e82b-4c57-8262-ea57a39b6185"),
        "center_id": uuid.UUID("a11f578a-1b81-4de0-8834-915f79e5362b"),
        "status_code": 1,
        "recurrence_status": 3,
        "member_code": "vvs356371",
        "expiry_date": datetime(2023, 3, 30, 20),
        "last_received_at": RECEIVED,
        "last_event_at": None,  # bare body
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }
    assert row("guest-membership-freeze") == {
        **shared,
        "next_collection_date": datetime(2021, 12, 24),
        "freeze_start_date": datetime(2021, 12, 13, 20),
        "freeze_end_date": datetime(2021, 12, 18, 20),
        "freeze_fee": Decimal(20),
        "unfrozen_at": None,
        "status": "frozen",
        "last_event_type": "Guest.Membership.Freeze",
    }
    assert row("guest-membership-cancelled") == {
        **shared,
        "grace_period_date": datetime(2021, 12, 20),
        "grace_period_days": 5,
        "cancel_initiated_date": datetime(2021, 12, 14, 3, 30, 8),
        "cancel_date": datetime(2021, 12, 14, 20),
        "termination_date": datetime(2021, 12, 14, 20),
        "cancel_reason": "Membership Cancellation Reason",
        "status": "cancelled",
        "last_event_type": "Guest.Membership.Cancelled",
    }


def test_unfreeze_and_reinstate_set_status_active():
    """Unfreeze stamps unfrozen_at (receipt time for a bare body, else the event time);
    Reinstate carries the plan and price again, but not the guest id."""
    unfreeze = row("guest-membership-unfreeze")
    assert (unfreeze["status"], unfreeze["unfrozen_at"]) == ("active", RECEIVED)
    data = repaired_json("guest-membership-unfreeze")
    enveloped = samples.envelope("Guest.Membership.Unfreeze", data, "u1", CREATED_AT)
    [stamped] = project(enveloped).rows["guest_memberships"]
    assert stamped["unfrozen_at"] == datetime(2023, 12, 21, 9, 34, 39, 802550, tzinfo=UTC)
    reinstate = row("guest-membership-reinstate")
    assert reinstate["status"] == "active" and "unfrozen_at" not in reinstate
    assert "guest_id" not in reinstate and "freeze_start_date" not in reinstate
    assert (reinstate["membership_name"], reinstate["price_final"]) == (
        "10- Massages - mem",
        Decimal(1000),
    )
    assert reinstate["invoice_number"] == "RR16364"


def test_package_creation_loads_field_by_field():
    """Creation (a cut-off page) fills every column it carries; the balances are the sums of
    its services' counters, exact."""
    assert row("guest-package-creation") == {
        "user_package_id": uuid.UUID("fe645486-7165-41de-8948-7f476c856824"),
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
        "completed_schedules": 1,
        "next_schedule_date": datetime(2022, 3, 3, 20),
        "is_refunded": False,
        "services_total": 1 + 1 + 2 + 1,
        "services_used": 0,
        "services_balance": 0 + 1 + 2 + 1,
        "balance_amount": Decimal("0") + Decimal("51.72") + Decimal("2.06") + Decimal("11.38"),
        "last_event_type": "Guest.Package.Creation",
        "last_event_at": None,
        "last_received_at": RECEIVED,
        "last_ingest_id": "01900000-0000-7000-8000-000000000001",
    }


@pytest.mark.parametrize(
    "name",
    [
        "guest-package-redemption",
        "guest-package-redemption-reversal",
        "guest-package-status-update",
        "guest-package-validity-update",
    ],
)
def test_other_package_events_write_validity_and_flags_but_no_balances(name):
    """Redemption, Reversal, Status and Validity Update carry the package's validity and
    flags; none lists the services, so none touches the balances."""
    written = row(name)
    data = repaired_json(name)
    assert written["user_package_id"] == uuid.UUID(data["user_package_id"])
    assert written["end_date"] == datetime.fromisoformat(data["date"]["end"])
    assert written["package_state"] == data["user_package_state"]
    assert (written["expiration_days"], written["never_expires"]) == (30, False)
    assert written["has_first_redemption"] is data["has_first_redemption"]
    assert written["start_validity_at_first_redemption"] is False
    assert not {"services_total", "services_balance", "balance_amount", "guest_id"} & set(written)
    assert written["last_event_type"] == PACKAGE_PAGES[name]


def test_every_page_of_one_resource_writes_one_column_set_per_event_type():
    """Rows of one event type carry the same keys whatever their values (nulls included)."""
    for name in PAGES:
        data = repaired_json(name)
        inner = data.get("data", data)
        for key, value in list(inner.items()):
            if key not in ("user_membership_id", "user_package_id") and not isinstance(
                value, dict | list
            ):
                inner[key] = None
        assert set(row(name, json.dumps(data).encode())) == set(row(name)), name


def test_the_names_registered():
    """Each page's name, and the dotted spelling of the two-word package events, is handled."""
    for event_type in PAGES.values():
        assert event_type in handlers.HANDLERS
    for joined, dotted in [
        ("RedemptionReversal", "Redemption.Reversal"),
        ("StatusUpdate", "Status.Update"),
        ("ValidityUpdate", "Validity.Update"),
    ]:
        assert (
            packages.HANDLERS[f"Guest.Package.{dotted}"]
            is packages.HANDLERS[f"Guest.Package.{joined}"]
        )
    assert set(handlers.TABLES) >= {"guest_memberships", "guest_packages"}


def test_events_row_is_keyed_by_the_membership_or_package():
    """The events row of each names the entity and center, so the event log joins back."""
    created = project(repaired("guest-membership-created"))
    assert (created.entity_id, created.center_id) == (
        "c602e0d1-f9d2-4f37-809e-ceb882e59af4",
        uuid.UUID("b787e08d-f393-4a26-a332-6050c8848d2a"),
    )
    status = project(repaired("guest-package-status-update"), "Guest.Package.StatusUpdate")
    assert status.entity_id == "0cc3f6bd-680e-4953-bda6-9441565efb52"


def test_quirks_none_values_uppercase_and_extra_keys():
    """Uppercase GUIDs load, "" and the nil GUID mean NULL, the .NET default date means NULL,
    a string amount loads exactly, and unknown keys are ignored."""
    data = repaired_json("guest-membership-freeze")
    data["user_membership_id"] = data["user_membership_id"].upper()
    data["center"]["id"] = "00000000-0000-0000-0000-000000000000"
    data["group_user_membership_id"] = ""
    data["expiry_date"] = "0001-01-01T00:00:00"
    data["freeze"]["fee"] = "20.125"
    data["freeze"]["brand_new"] = {"x": 1}
    data["another"] = [1]
    written = row("guest-membership-freeze", json.dumps(data).encode())
    assert written["user_membership_id"] == uuid.UUID("01192853-a6b5-4ff4-b299-e36b9efe61ac")
    assert written["center_id"] is None and written["group_user_membership_id"] is None
    assert written["expiry_date"] is None
    assert written["freeze_fee"] == Decimal("20.125")


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("guest-membership-freeze", ("user_membership_id",)),
        ("guest-membership-cancelled", ("center", "id")),
        ("guest-package-validity-update", ("user_package_id",)),
        ("guest-package-creation", ("services", 1, "balance_amount")),
    ],
)
def test_schema_error_names_the_field_and_type_never_the_value(name, path):
    """A value of the wrong kind is a schema dead letter naming its path; the value is never
    quoted (it may be personal data)."""
    data = repaired_json(name)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "Priya-SECRET-65t3"
    with pytest.raises(errors.SchemaMismatch) as caught:
        row(name, json.dumps(data).encode())
    where = ".".join(str(p) for p in path)
    assert caught.value.reason.startswith(f"{where}: Not a valid")
    assert caught.value.reason.endswith("(got string)")
    assert "SECRET" not in caught.value.reason and "Priya" not in caught.value.reason


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("guest-membership-freeze", "user_membership_id"),
        ("guest-package-creation", "user_package_id"),
    ],
)
@pytest.mark.parametrize("value", [None, "", "00000000-0000-0000-0000-000000000000", "missing"])
def test_an_entity_without_an_id_is_a_schema_error(name, key, value):
    """A membership or package with no real id can't be keyed: a schema dead letter."""
    data = repaired_json(name)
    if value == "missing":
        del data[key]
    else:
        data[key] = value
    with pytest.raises(errors.SchemaMismatch, match=rf"^{key}: "):
        row(name, json.dumps(data).encode())


def test_services_without_counters_sum_to_null():
    """A services list whose items state no counter gives NULL balances, not zero."""
    data = repaired_json("guest-package-creation")
    data["services"] = [{"total": None}, {}]
    written = row("guest-package-creation", json.dumps(data).encode())
    assert written["services_total"] is None and written["balance_amount"] is None
    assert parts.dig({"a": None}, ("a", "b")) is None
