"""Class sessions and bookings in real Postgres: samples land, order and redelivery converge."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write

CENTER_ID = uuid.UUID("e1693623-bda5-4b3e-a2a7-611ea4f1f7ad")
BAD_CENTER_ID = "442af543-6b2c-7677-65t3-4dff40d43987"
REPAIRED_CENTER_ID = "442af543-6b2c-7677-65f3-4dff40d43987"

SESSION_COLUMNS = (
    "session_id, center_id, class_name, class_type, status, start_time, end_time, "
    "duration_minutes, capacity, web_capacity, show_in_catalog, is_free_session, is_recurring, "
    "recurrence_id, deleted_at, last_event_type, last_event_at"
)
BOOKING_COLUMNS = (
    "registration_id, session_id, class_id, workshop_id, guest_id, center_id, status, waitlist, "
    "booking_source, group_invoice_id, recurrence_id, deleted_at, last_event_type, last_event_at"
)


def data_of(page: str) -> dict:
    return json.loads(samples.printed_body(page))["data"]


def repaired_bare(page: str) -> bytes:
    """The bare Approved/Rejected page with its one non-GUID center id mended."""
    return samples.printed_body(page).replace(BAD_CENTER_ID.encode(), REPAIRED_CENTER_ID.encode())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sessions(url: str, where: str = "true") -> list[tuple]:
    return fetch(url, f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE {where} ORDER BY 1")


def bookings(url: str, where: str = "true") -> list[tuple]:
    return fetch(url, f"SELECT {BOOKING_COLUMNS} FROM class_bookings WHERE {where} ORDER BY 1")


def test_schedule_created_lands_field_by_field(pool, settings):
    """The Schedule Created page, as printed, is one class_sessions row with every column
    typed as declared, and one events row keyed by the session id."""
    d = delivery(samples.printed_body("schedule-created"))
    assert write(pool, d) == {d.ingest_id: "processed"}
    assert sessions(settings.database_url) == [
        (
            "89604",
            CENTER_ID,
            "abc camp",
            1,
            "scheduled",
            datetime(2022, 3, 21, 15, 15),
            datetime(2022, 3, 21, 17, 45),
            30,
            10,
            5,
            True,
            False,
            False,
            None,
            None,
            "Class.Schedule.Created",
            at("2022-03-22T10:59:11.480910"),
        )
    ]
    [(last_ingest_id, received)] = fetch(
        settings.database_url, "SELECT last_ingest_id, last_received_at FROM class_sessions"
    )
    assert str(last_ingest_id) == d.ingest_id and received is not None
    assert fetch(
        settings.database_url,
        "SELECT event_type, resource, entity_id, center_id, data->>'class_name' FROM events",
    ) == [("Class.Schedule.Created", "Class", "89604", CENTER_ID, "abc camp")]


def test_booking_created_lands_field_by_field(pool, settings):
    """The Booking Created page, as printed, is one class_bookings row, field by field."""
    d = delivery(samples.printed_body("booking-created"))
    assert write(pool, d) == {d.ingest_id: "processed"}
    assert bookings(settings.database_url) == [
        (
            "119986",
            "89607",
            "11370",
            "11370",
            uuid.UUID("ef44e802-505c-4129-9744-0978c094c8f2"),
            CENTER_ID,
            "booked",
            False,
            None,
            None,
            None,
            None,
            "Class.Booking.Created",
            at("2022-03-22T12:32:30.292629"),
        )
    ]
    assert fetch(settings.database_url, "SELECT entity_id, center_id FROM events") == [
        ("119986", CENTER_ID)
    ]


def test_every_class_page_lands_in_its_table(pool, settings):
    """All ten class pages in one batch: the enveloped ones as printed, the two bare ones
    mended and on their URL's type. Each key ends in its newest event's state; the Deleted
    ones carry their event time in deleted_at."""
    enveloped = [
        "schedule-created",
        "schedule-updated",
        "schedule-cancelled",
        "schedule-deleted",
        "booking-created",
        "booking-cancelled",
        "booking-deleted",
        "booking-no-show",
    ]
    batch = [delivery(samples.printed_body(page)) for page in enveloped]
    batch += [
        delivery(repaired_bare("booking-approved"), "Class.Booking.Approved", 1_000),
        delivery(repaired_bare("booking-rejected"), "Class.Booking.Rejected", 2_000),
    ]
    assert set(write(pool, *batch).values()) == {"processed"}
    url = settings.database_url
    assert fetch(
        url,
        "SELECT session_id, status, end_time, duration_minutes, deleted_at,"
        " last_event_type FROM class_sessions ORDER BY 1",
    ) == [
        ("89604", "scheduled", datetime(2022, 3, 21, 18, 0), 45, None, "Class.Schedule.Updated"),
        (
            "89606",
            "deleted",
            datetime(2022, 3, 22, 13, 30),
            30,
            at("2022-03-22T12:25:27.604961"),
            "Class.Schedule.Deleted",
        ),
    ]
    assert fetch(
        url,
        "SELECT registration_id, status, deleted_at, last_event_type, center_id"
        " FROM class_bookings ORDER BY 1",
    ) == [
        ("119986", "deleted", at("2022-03-22T12:34:15.379749"), "Class.Booking.Deleted", CENTER_ID),
        ("119987", "no_show", None, "Class.Booking.NoShow", CENTER_ID),
        ("119988", "cancelled", None, "Class.Booking.Cancelled", CENTER_ID),
        ("43987", "rejected", None, "Class.Booking.Rejected", uuid.UUID(REPAIRED_CENTER_ID)),
    ]
    assert fetch(url, "SELECT resource, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("Class", 10)
    ]  # bare bodies: the resource is the hint's first word, as in envelopes


def test_bare_booking_page_as_printed_is_a_schema_dead_letter(pool, settings):
    """The Approved page as printed (center id `...-65t3-...`) is kept as a dead delivery,
    failure class schema, the reason naming the field; the good delivery beside it lands."""
    broken = delivery(samples.printed_body("booking-approved"), "Class.Booking.Approved")
    good = delivery(samples.printed_body("booking-created"))
    assert write(pool, broken, good) == {broken.ingest_id: "dead", good.ingest_id: "processed"}
    [(failure_class, error, body)] = fetch(
        settings.database_url,
        "SELECT failure_class, error, body FROM webhook_events WHERE status = 'dead'",
    )
    assert (failure_class, error) == ("schema", "center_id: Not a valid GUID (got string)")
    assert bytes(body) == samples.printed_body("booking-approved")
    assert fetch(settings.database_url, "SELECT registration_id FROM class_bookings") == [
        ("119986",)
    ]


def session_events(key: str) -> list[bytes]:
    """A session's life in order: created, updated, cancelled, deleted, created again."""
    data = {**data_of("schedule-created"), "sesion_id": int(key)}
    steps = [
        ("Class.Schedule.Created", {}),
        ("Class.Schedule.Updated", {"capacity": 12, "end_time": "2022-03-21T18:00:00"}),
        ("Class.Schedule.Cancelled", {"capacity": 12}),
        ("Class.Schedule.Deleted", {"capacity": 12}),
        ("Class.Schedule.Created", {"capacity": 8, "class_name": "abc camp II"}),
    ]
    return [
        samples.envelope(
            event_type, {**data, **changes}, f"{key}-{n}", f"2022-03-22T10:{n:02d}:00.1234567Z"
        )
        for n, (event_type, changes) in enumerate(steps)
    ]


def booking_events(key: str) -> list[bytes]:
    """A booking's life in order: booked, approved, no-show, cancelled, deleted."""
    data = {**data_of("booking-created"), "registration_id": key}
    steps = [
        ("Class.Booking.Created", {"waitlist": True}),
        ("Class.Booking.Approved", {"waitlist": False}),
        ("Class.Booking.NoShow", {}),
        ("Class.Booking.Cancelled", {"booking_source": 2}),
        ("Class.Booking.Deleted", {}),
    ]
    return [
        samples.envelope(
            event_type, {**data, **changes}, f"{key}-{n}", f"2022-03-22T12:{n:02d}:00.5Z"
        )
        for n, (event_type, changes) in enumerate(steps)
    ]


def converge(pool, settings, events_of, table_rows, key_column: str) -> None:
    """In order, one at a time, is the reference. Then, each under its own key: reversed,
    shuffled, all in one batch, and every event twice; each must end in the reference's
    state, and every second copy is a duplicate."""
    reference = "1000"
    for body in events_of(reference):
        write(pool, delivery(body))
    rng = random.Random(7)
    orders = {"1001": "reversed", "1002": "shuffled", "1003": "shuffled", "1004": "one batch"}
    for key, how in orders.items():
        bodies = events_of(key)
        if how == "reversed":
            bodies.reverse()
        elif how == "shuffled":
            rng.shuffle(bodies)
        twice = [delivery(b) for b in bodies] + [delivery(b) for b in rng.sample(bodies, 5)]
        if how == "one batch":
            statuses = write(pool, *twice)
        else:
            statuses = {}
            for d in twice:
                statuses.update(write(pool, d))
        assert sorted(statuses.values()) == ["duplicate"] * 5 + ["processed"] * 5, how
    url = settings.database_url
    [expected] = table_rows(url, f"{key_column} = '{reference}'")
    for key, how in orders.items():
        [row] = table_rows(url, f"{key_column} = '{key}'")
        assert row[1:] == expected[1:], how


def test_sessions_converge_whatever_the_order_and_redeliveries(pool, settings):
    """Delivered out of order and twice, a session ends as in order: re-created after its
    deletion (deleted_at cleared), with the newest event's values."""
    converge(pool, settings, session_events, sessions, "session_id")
    [row] = fetch(
        settings.database_url,
        "SELECT status, deleted_at, capacity, class_name,"
        " last_event_type FROM class_sessions"
        " WHERE session_id = '1000'",
    )
    assert row == ("scheduled", None, 8, "abc camp II", "Class.Schedule.Created")


def test_bookings_converge_whatever_the_order_and_redeliveries(pool, settings):
    """Delivered out of order and twice, a booking ends as in order: deleted, deleted_at its
    event time, with the values the Deleted event carries."""
    converge(pool, settings, booking_events, bookings, "registration_id")
    [row] = fetch(
        settings.database_url,
        "SELECT status, deleted_at, waitlist, booking_source"
        " FROM class_bookings WHERE registration_id = '1000'",
    )
    assert row == ("deleted", at("2022-03-22T12:04:00.5"), False, None)


def test_deleted_then_created_again_undeletes(pool, settings):
    """A Deleted event sets deleted_at; a newer Created clears it; an older one does not."""
    deleted, created = session_events("2000")[3:5]
    older = session_events("2000")[0]
    write(pool, delivery(deleted))
    assert fetch(settings.database_url, "SELECT status, deleted_at FROM class_sessions") == [
        ("deleted", at("2022-03-22T10:03:00.123456"))
    ]
    write(pool, delivery(older))
    assert fetch(settings.database_url, "SELECT status FROM class_sessions") == [("deleted",)]
    write(pool, delivery(created))
    assert fetch(settings.database_url, "SELECT status, deleted_at FROM class_sessions") == [
        ("scheduled", None)
    ]


def test_bare_bookings_order_by_receipt_and_repeat_as_duplicates(pool, settings):
    """Bare Approved/Rejected bodies have no event time: the later received wins, and the
    same body on the same URL again is a duplicate."""
    approved = delivery(repaired_bare("booking-approved"), "Class.Booking.Approved", 2_000)
    rejected = delivery(repaired_bare("booking-rejected"), "Class.Booking.Rejected", 1_000)
    again = delivery(repaired_bare("booking-approved"), "Class.Booking.Approved", 3_000)
    assert write(pool, approved, rejected) == {
        approved.ingest_id: "processed",
        rejected.ingest_id: "processed",
    }
    assert write(pool, again) == {again.ingest_id: "duplicate"}
    assert fetch(
        settings.database_url,
        "SELECT registration_id, status, last_event_at, group_invoice_id::text FROM class_bookings",
    ) == [("43987", "approved", None, "c35c1c68-208a-4cdb-a01e-dc541ba9d3c1")]
