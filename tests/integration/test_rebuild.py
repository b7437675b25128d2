"""`zenoti-ingest rebuild`: current state recomputed from the archive alone, compared to live."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from marshmallow import Schema, fields

from cli import exits
from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from worker.operations import rebuild
from worker.pipeline import batch, handlers, projection
from zenoti_ingest import contract, db

# Every sample page that prints a body.
PAGES = [
    "appointment-started",
    *sorted(
        p.stem
        for p in (samples.DATA / "samples").glob("*.txt")
        if any(line.startswith("{") for line in p.read_text().splitlines())
    ),
]
# The pages whose body has no envelope: posted to the URL that names their event type.
BARE_PAGES = (
    "appointment-started",
    "appointment-completed",
    "booking-approved",
    "booking-rejected",
    "guest-membership-cancelled",
    "guest-membership-freeze",
    "guest-membership-reinstate",
    "guest-package-status-update",
    "guest-package-validity-update",
)
GUEST = "b9e61937-d5ce-46d5-be26-2659280d5eb9"  # the guest of the guest-* pages
APPOINTMENT = "01d2dbac-51ad-4a5c-a252-40eaf47dd3a0"  # of appointment-started


def body(page: str) -> bytes:
    """The page's body; one that is no JSON (printed with typos, or cut off) is archived as a
    dead letter, which a rebuild leaves out like the worker did."""
    try:
        return samples.repaired_body(page)
    except ValueError:
        return samples.printed_body(page)
    except StopIteration:  # the page cuts the body off
        text = samples.page(page)
        return text[text.index("\n{") + 1 :].encode()


def guest_event(
    page: str, delivery_id: str, timestamp: str, event_type: str | None = None
) -> bytes:
    document = samples.repaired_json(page)
    return samples.envelope(
        event_type or document["event_type"], document["data"], delivery_id, timestamp
    )


@pytest.fixture
def archive(pool):
    """Every sample page, one delivery at a time in order of receipt, one of them twice."""
    statuses = {}
    for n, page in enumerate([*PAGES, "guest-created"]):
        statuses.update(
            write(
                pool,
                delivery(
                    body(page),
                    samples.EVENT_TYPES[page] if page in BARE_PAGES else "",
                    received_us=1_700_000_000_000_000 + n,
                ),
            )
        )
    assert sorted(set(statuses.values())) == ["dead", "duplicate", "processed"]
    return statuses


def snapshot(url: str) -> dict[str, list[tuple]]:
    return {name: fetch(url, f"SELECT * FROM {name} ORDER BY 1") for name in handlers.TABLES}


def report(invoke, code: int) -> dict:
    return json.loads(invoke("rebuild", "--json", code=code).stdout)


def test_consistent_database_reports_no_difference(invoke, archive, settings):
    """Rebuilt from the archive, every table equals the live one: exit 0, zeros everywhere."""
    result = invoke("rebuild")
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["TABLE", "REBUILT", "LIVE", "MISSING", "EXTRA", "DIFFERENT"]
    assert {row.split()[0] for row in rows} == set(handlers.TABLES)
    assert all(row.split()[3:] == ["0", "0", "0"] for row in rows)
    assert "match the archive" in result.stderr
    document = report(invoke, 0)
    processed = sum(1 for s in archive.values() if s == "processed")
    assert (document["deliveries"], document["differs"]) == (processed, False)
    assert {t["table"]: t["rebuilt"] == t["live"] for t in document["tables"]} == {
        name: True for name in handlers.TABLES
    }
    assert sum(t["live"] for t in document["tables"]) > len(handlers.TABLES)


def test_tampered_live_rows_are_reported_by_key_and_column(invoke, archive, settings):
    """A changed, a deleted and an invented row: different (which columns), missing, extra."""
    url = settings.database_url
    extra = str(uuid.uuid4())
    with db.connect(url) as conn:
        conn.execute(
            "UPDATE appointments SET status = 'tampered', progress = 7"
            " WHERE appointment_id = %(id)s",
            {"id": APPOINTMENT},
        )
        conn.execute("DELETE FROM guests WHERE guest_id = %(id)s", {"id": GUEST})
        conn.execute(
            "INSERT INTO employees SELECT (jsonb_populate_record(e, jsonb_build_object("
            "'employee_id', %(id)s::text))).* FROM employees e LIMIT 1",
            {"id": extra},
        )
    before = snapshot(url)
    document = report(invoke, exits.DIFFERS)
    tables = {t["table"]: t for t in document["tables"]}
    assert tables["appointments"]["different"] == {
        "count": 1,
        "rows": [{"key": APPOINTMENT, "columns": ["progress", "status"]}],
    }
    assert tables["guests"]["missing"] == {"count": 1, "keys": [GUEST]}
    assert tables["employees"]["extra"] == {"count": 1, "keys": [extra]}
    assert (
        sum(
            t["missing"]["count"] + t["extra"]["count"] + t["different"]["count"]
            for t in document["tables"]
        )
        == 3
    )
    table = invoke("rebuild", "--table", "appointments", code=exits.DIFFERS).stdout
    assert any(
        line.split() == ["appointments", "different", APPOINTMENT, "progress,", "status"]
        for line in table.splitlines()
    )
    assert "guests" not in table
    assert snapshot(url) == before  # reporting changed nothing


def test_rebuild_in_small_batches_leaves_no_trace(archive, settings):
    """Many batches through the server-side cursor; afterwards no scratch table, no change."""
    before = snapshot(settings.database_url)
    seen = []
    with db.connect(settings.database_url, autocommit=True) as conn:
        result = rebuild.rebuild(conn, progress=seen.append, batch_size=2)
        assert conn.execute("SELECT to_regclass('pg_temp.appointments')").fetchone() == (None,)
        assert conn.isolation_level is None
    assert not result.differs and sum(seen) == result.deliveries and len(seen) > 3
    assert snapshot(settings.database_url) == before


def test_older_columns_a_newer_event_lacks_survive_the_rebuild(invoke, pool):
    """Deleted, then Merged (which carries no deleted_at), read back in one batch: the rebuilt
    guest is still deleted, as live, where they came one at a time."""
    times = ("2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z", "2024-01-03T10:00:00Z")
    for n, (page, event_type) in enumerate(
        [("guest-created", None), ("guest-deleted", None), ("guest-updated", "Guest.Merged")]
    ):
        d = delivery(
            guest_event(page, f"g{n}", times[n], event_type), received_us=1_700_000_000_000_000 + n
        )
        assert write(pool, d) == {d.ingest_id: "processed"}
    assert report(invoke, 0)["differs"] is False


def test_a_type_without_handler_then_is_missing_until_reprocessed(invoke, pool, monkeypatch):
    """Archived while nobody handled its type: rebuild shows the row live lacks; a reprocess
    of the delivery makes them agree."""
    d = delivery(
        samples.envelope(
            "Appointment.Started",
            samples.repaired_json("appointment-started"),
            "zen-1",
            "2024-01-01T10:00:00Z",
        )
    )
    with monkeypatch.context() as patched:
        patched.delitem(handlers.HANDLERS, "Appointment.Started")
        write(pool, d)
    tables = {t["table"]: t for t in report(invoke, exits.DIFFERS)["tables"]}
    assert tables["appointments"]["missing"] == {"count": 1, "keys": [APPOINTMENT]}
    write(pool, dataclasses.replace(d, mode=contract.REPROCESS))
    assert report(invoke, 0)["differs"] is False


class Stricter(Schema):
    a_field_no_event_has = fields.String(required=True)


def test_deliveries_todays_schemas_reject_are_named(invoke, pool, monkeypatch):
    """A processed delivery the current schema refuses is listed, and its row shows as extra."""
    d = delivery(
        samples.envelope(
            "Appointment.Started",
            samples.repaired_json("appointment-started"),
            "zen-1",
            "2024-01-01T10:00:00Z",
        )
    )
    write(pool, d)
    monkeypatch.setitem(
        handlers.HANDLERS,
        "Appointment.Started",
        projection.Handler(Stricter(), lambda record, applied: None),
    )
    document = report(invoke, exits.DIFFERS)
    assert document["not_projected"] == [d.ingest_id]
    tables = {t["table"]: t for t in document["tables"]}
    assert tables["appointments"]["extra"]["keys"] == [APPOINTMENT]


def test_rounds_apply_each_keys_events_one_at_a_time_in_order():
    """A batch splits into rounds where no key repeats, each key's events in receipt order."""

    def guest(delivery_id: str, timestamp: str):
        return batch.prepare(delivery(guest_event("guest-updated", delivery_id, timestamp)), 1)

    first, second, third = (guest(f"g{day}", f"2024-01-0{day}T00:00:00Z") for day in (1, 2, 3))
    employee = batch.prepare(delivery(samples.printed_body("employee-created")), 1)
    rounds = list(rebuild._rounds([first, employee, second, third]))
    assert rounds == [[first, employee], [second], [third]]
