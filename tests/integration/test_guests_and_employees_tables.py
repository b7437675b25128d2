"""Guest and employee events into real Postgres: columns, event log, order, deletes."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime

from structlog.testing import capture_logs

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write

GUEST_PAGES = ("guest-created", "guest-updated", "guest-deleted")
EMPLOYEE_PAGES = ("employee-created", "employee-updated", "employee-deleted")
GUEST_COLUMNS = (
    "guest_id, guest_number, code, center_id, center_name, created_date, first_name,"
    " last_name, gender, is_minor, nationality_id, country_id, state_id,"
    " receive_transactional_email, receive_transactional_sms, receive_transactional_whatsapp,"
    " receive_marketing_email, receive_marketing_sms, receive_lp_statement,"
    " opt_in_for_loyalty_program, transactional_email_optin, transactional_sms_optin,"
    " transactional_whatsapp_optin, marketing_email_optin, marketing_sms_optin, deleted_at,"
    " last_event_type, last_event_at"
)
EMPLOYEE_COLUMNS = (
    "employee_id, code, center_id, is_consultant, created_by, first_name, last_name, gender,"
    " job_id, job_name, designation_id, start_date, end_date, include_in_payroll,"
    " security_profile_id, show_in_catalog, deleted_at, last_event_type, last_event_at"
)


def as_dicts(url: str, columns: str, table: str) -> list[dict]:
    names = [c.strip() for c in columns.split(",")]
    rows = fetch(url, f"SELECT {columns} FROM {table} ORDER BY 1")
    return [dict(zip(names, row, strict=True)) for row in rows]


def event(
    page: str, delivery_id: str, timestamp: str, event_type: str | None = None, **data_changes
) -> bytes:
    """A sample page's event re-enveloped: its own delivery id, time, and data changes."""
    document = samples.repaired_json(page)
    return samples.envelope(
        event_type or document["event_type"],
        {**document["data"], **data_changes},
        delivery_id,
        timestamp,
    )


def test_guest_created_lands_column_by_column(pool, settings):
    """The printed Guest.Created body is processed into one guests row, every column checked,
    and its events row holds the whole data object, personal data included, as jsonb."""
    d = delivery(samples.printed_body("guest-created"))
    assert write(pool, d) == {d.ingest_id: "processed"}
    [row] = as_dicts(settings.database_url, GUEST_COLUMNS, "guests")
    assert row == {
        "guest_id": uuid.UUID("b9e61937-d5ce-46d5-be26-2659280d5eb9"),
        "guest_number": "683768",
        "code": "1A347",
        "center_id": uuid.UUID("34aac717-e7df-4231-afc8-14420213957c"),
        "center_name": "Chicago",
        "created_date": datetime(2022, 3, 11, 14, 59, 49),
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
    }
    [(entity_id, center_id, resource, data, ingest_id)] = fetch(
        settings.database_url,
        "SELECT e.entity_id, e.center_id, e.resource, e.data, g.last_ingest_id"
        " FROM events e JOIN guests g ON g.last_ingest_id = e.ingest_id",
    )
    assert (entity_id, str(center_id), resource) == (
        "b9e61937-d5ce-46d5-be26-2659280d5eb9",
        "34aac717-e7df-4231-afc8-14420213957c",
        "Guest",
    )
    assert data == samples.repaired_json("guest-created")["data"]
    assert str(ingest_id) == d.ingest_id


def test_employee_created_lands_column_by_column(pool, settings):
    """The printed Employee.Created body is processed into one employees row, every column
    checked; contact details stay in the events row only."""
    d = delivery(samples.printed_body("employee-created"))
    assert write(pool, d) == {d.ingest_id: "processed"}
    [row] = as_dicts(settings.database_url, EMPLOYEE_COLUMNS, "employees")
    assert row == {
        "employee_id": uuid.UUID("ba06e416-a2c2-4324-a6ef-e328ff91bbc2"),
        "code": "246",
        "center_id": uuid.UUID("99d6833e-ceb9-4232-85c8-05fb78bd2519"),
        "is_consultant": None,
        "created_by": None,
        "first_name": "George",
        "last_name": "Soderdam",
        "gender": -1,
        "job_id": uuid.UUID("aa165487-d5b0-4525-ab24-1579eb6fb9fe"),
        "job_name": "BEAUTICIAN",
        "designation_id": None,
        "start_date": datetime(2022, 3, 22),
        "end_date": None,
        "include_in_payroll": 1,
        "security_profile_id": None,
        "show_in_catalog": False,
        "deleted_at": None,
        "last_event_type": "Employee.Created",
        "last_event_at": datetime(2022, 3, 22, 9, 12, 38, 780089, tzinfo=UTC),
    }
    [(email,)] = fetch(
        settings.database_url,
        "SELECT data #>> '{personal_info,email}' FROM events"
        " WHERE entity_id = 'ba06e416-a2c2-4324-a6ef-e328ff91bbc2'",
    )
    assert email == "George@abc.com"


def test_every_sample_page_as_printed_lands_in_its_table(pool, settings):
    """All six pages (valid JSON as printed) in one batch: each processed; the guest ends
    deleted as of Guest.Deleted, employee George updated, employee 6285ff42 deleted."""
    deliveries = [delivery(samples.printed_body(p)) for p in GUEST_PAGES + EMPLOYEE_PAGES]
    assert set(write(pool, *deliveries).values()) == {"processed"}
    url = settings.database_url
    [guest] = as_dicts(url, GUEST_COLUMNS, "guests")
    assert (guest["code"], guest["last_event_type"], guest["transactional_whatsapp_optin"]) == (
        "1A347ABH",
        "Guest.Deleted",
        6,
    )
    assert guest["deleted_at"] == datetime(2022, 3, 11, 15, 23, 56, 993126, tzinfo=UTC)
    employees = {str(e["employee_id"]): e for e in as_dicts(url, EMPLOYEE_COLUMNS, "employees")}
    george = employees.pop("ba06e416-a2c2-4324-a6ef-e328ff91bbc2")
    [other] = employees.values()
    assert (george["last_event_type"], george["deleted_at"]) == ("Employee.Updated", None)
    assert (other["last_event_type"], other["job_name"], other["code"]) == (
        "Employee.Deleted",
        "THERAPIST",
        None,
    )
    assert other["deleted_at"] == datetime(2022, 3, 22, 9, 8, 14, 86947, tzinfo=UTC)
    assert fetch(url, "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("Employee.Created", 1),
        ("Employee.Deleted", 1),
        ("Employee.Updated", 1),
        ("Guest.Created", 1),
        ("Guest.Deleted", 1),
        ("Guest.Updated", 1),
    ]


GUEST_TIMES = (
    "2022-03-11T14:59:50.8745837Z",
    "2022-03-11T15:05:16.3791453Z",
    "2022-03-11T15:23:56.9931265Z",
)


def guest_events(n: int) -> tuple[str, list[bytes]]:
    """Created, Updated, Deleted of a fresh guest, then a redelivery of Updated."""
    guest = str(uuid.uuid4())
    bodies = [
        event(page, f"g{n}-{page}", when, id=guest, _id=n)
        for page, when in zip(GUEST_PAGES, GUEST_TIMES, strict=True)
    ]
    return guest, [*bodies, bodies[1]]


def test_guest_events_in_any_order_and_twice_converge(pool, settings):
    """Every order of Created, Updated, Deleted and a redelivered Updated, one delivery per
    batch (a fresh guest per order): each guest ends in the in-order state, and each
    redelivery is a duplicate."""
    orders = list(itertools.permutations(range(4)))
    guests = []
    for n, order in enumerate(orders):
        guest, bodies = guest_events(n)
        guests.append(guest)
        statuses = [s for i in order for s in write(pool, delivery(bodies[i])).values()]
        assert sorted(statuses) == ["duplicate", "processed", "processed", "processed"]
    rows = fetch(
        settings.database_url,
        "SELECT guest_id::text, code, last_event_type, deleted_at, guest_number FROM guests",
    )
    deleted_at = datetime(2022, 3, 11, 15, 23, 56, 993126, tzinfo=UTC)
    assert sorted(rows) == sorted(
        (g, "1A347ABH", "Guest.Deleted", deleted_at, str(n)) for n, g in enumerate(guests)
    )


def test_guest_events_in_one_batch_converge(pool, settings):
    """Newest first in a single batch, with the redelivery in it: one row, in-order state."""
    _, bodies = guest_events(1)
    statuses = write(pool, *(delivery(b) for b in reversed(bodies)))
    assert sorted(statuses.values()) == ["duplicate", "processed", "processed", "processed"]
    [(code, last_type)] = fetch(settings.database_url, "SELECT code, last_event_type FROM guests")
    assert (code, last_type) == ("1A347ABH", "Guest.Deleted")


def test_a_later_create_undeletes_and_an_older_one_does_not(pool, settings):
    """Deleted sets deleted_at; a Created older than it changes nothing, a newer one clears
    deleted_at (the guest came back)."""
    url = settings.database_url
    write(pool, delivery(samples.printed_body("guest-deleted")))
    write(pool, delivery(samples.printed_body("guest-created")))  # older: ignored
    [(deleted_at, last_type)] = fetch(url, "SELECT deleted_at, last_event_type FROM guests")
    assert deleted_at is not None and last_type == "Guest.Deleted"
    write(pool, delivery(event("guest-created", "again", "2022-03-12T00:00:00Z")))
    assert fetch(url, "SELECT deleted_at, last_event_type, code FROM guests") == [
        (None, "Guest.Created", "1A347")
    ]


def test_guest_merged_updates_without_touching_deleted_at(pool, settings):
    """Guest.Merged (no sample; registered like Updated) lands in guests, updates the columns
    and leaves deleted_at as it was; on a new guest it inserts a live row."""
    url = settings.database_url
    write(pool, delivery(samples.printed_body("guest-deleted")))
    merged = event("guest-updated", "m1", "2022-03-12T00:00:00Z", "Guest.Merged", code="NEW")
    other = str(uuid.uuid4())
    fresh = event("guest-updated", "m2", "2022-03-12T00:00:00Z", "Guest.Merged", id=other)
    write(pool, delivery(merged), delivery(fresh))
    rows = dict(
        fetch(
            url,
            "SELECT guest_id::text, (code, last_event_type, deleted_at IS NOT"
            " NULL)::text FROM guests",
        )
    )
    assert rows == {
        "b9e61937-d5ce-46d5-be26-2659280d5eb9": "(NEW,Guest.Merged,t)",
        other: "(1A347ABH,Guest.Merged,f)",
    }
    assert fetch(
        url, "SELECT resource FROM events WHERE event_type = 'Guest.Merged' GROUP BY 1"
    ) == [("Guest",)]


def test_employee_events_in_any_order_and_twice_converge(pool, settings):
    """Every order of Created, Updated, Deleted (newest) and a redelivered Updated, one
    delivery per batch (a fresh employee per order): each ends in the in-order state,
    deleted as of Employee.Deleted; each redelivery is a duplicate."""
    deleted_at = datetime(2022, 3, 22, 10, 0, 0, 123456, tzinfo=UTC)
    expected = []
    for n, order in enumerate(itertools.permutations(range(4))):
        employee = str(uuid.uuid4())
        bodies = [
            event("employee-created", f"c{n}", "2022-03-22T09:12:38.7800898Z", id=employee),
            event("employee-updated", f"u{n}", "2022-03-22T09:14:29.6977791Z", id=employee),
            event("employee-deleted", f"d{n}", "2022-03-22T10:00:00.1234567Z", id=employee),
        ]
        bodies.append(bodies[1])
        statuses = [s for i in order for s in write(pool, delivery(bodies[i])).values()]
        assert sorted(statuses) == ["duplicate", "processed", "processed", "processed"]
        expected.append((employee, "Employee.Deleted", deleted_at, "THERAPIST"))
    rows = fetch(
        settings.database_url,
        "SELECT employee_id::text, last_event_type, deleted_at, job_name FROM employees",
    )
    assert sorted(rows) == sorted(expected)


def test_bare_employee_deleted_uses_receipt_time(pool, settings):
    """A bare body typed by the URL has no event time: deleted_at is when it was received."""
    data = samples.repaired_json("employee-deleted")["data"]
    d = delivery(json.dumps(data).encode(), "Employee.Deleted", received_us=1_700_000_000_000_000)
    assert write(pool, d) == {d.ingest_id: "processed"}
    assert fetch(settings.database_url, "SELECT deleted_at, last_event_at FROM employees") == [
        (datetime.fromtimestamp(1_700_000_000, UTC), None)
    ]


def test_a_guid_that_is_not_one_dead_letters_and_the_repaired_copy_lands(pool, settings):
    """A guest id shaped like the booking sample's `...65t3` ends dead, failure class schema,
    the reason naming the field; the same body repaired lands. No personal data is logged
    or stored in the reason."""
    bad_id = "b9e61937-d5ce-46d5-be26-2659280d65t3"
    bad = delivery(event("guest-created", "bad", GUEST_TIMES[0], id=bad_id))
    good = delivery(event("guest-created", "good", GUEST_TIMES[0], id=bad_id.replace("t", "f")))
    with capture_logs() as logs:
        assert write(pool, bad, good) == {bad.ingest_id: "dead", good.ingest_id: "processed"}
    assert fetch(
        settings.database_url,
        "SELECT failure_class, error FROM webhook_events WHERE status = 'dead'",
    ) == [("schema", "id: Not a valid GUID (got string)")]
    assert fetch(settings.database_url, "SELECT guest_id::text FROM guests") == [
        (bad_id.replace("t", "f"),)
    ]
    logged = json.dumps(logs, default=str)
    assert "Harrington" not in logged and "Joseph" not in logged and "65t3" not in logged
