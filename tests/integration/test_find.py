"""`zenoti-ingest find ID` for each kind of id, against real Redis and Postgres.

Deliveries are archived by the worker's batch code (processed, a duplicate, a dead letter) or
put on the stream by the ingress's Producer (waiting, held by a worker, a replay on its way).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
import redis

from cli import exits
from tests.fixtures import samples
from tests.fixtures.database import delivery, write
from zenoti_ingest import contract, stream

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GUEST = "b9e61937-d5ce-46d5-be26-2659280d5eb9"  # the guest of the Guest.* examples
GUEST_CREATED = ("622b63e6a961750e01db6558", "622b63e6a961750e01db6557")  # envelope id, event_id
APPOINTMENT = "ce5dd625-2bef-4b93-9418-a54bee1d36d3"  # in AppointmentGroup.Created
GROUP = "883ce749-12a8-497b-bc50-2c3206c50e91"
EMPLOYEE_CREATED = "62399306a961750e01dd998e"  # the envelope id of Employee.Created
DAY = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z, in microseconds
MINUTE = 60_000_000


def example(name: str) -> bytes:
    return (EXAMPLES / f"{name}.json").read_bytes()


def archived(pool, name: str | bytes, minutes: int) -> str:
    """Process one delivery received `minutes` after DAY; its ingest id."""
    body = example(name) if isinstance(name, str) else name
    d = delivery(body, received_us=DAY + minutes * MINUTE)
    write(pool, d)
    return d.ingest_id


@pytest.fixture
def known(settings, pool):
    """A Guest.Created processed then repeated (a duplicate), a Guest.Updated of the same
    guest, an appointment group, a dead letter replayed and waiting in the stream again, an
    Employee.Updated held by worker celery@b:0, an Employee.Created waiting in the stream."""
    ids = {
        "created": archived(pool, "Guest.Created", 1),
        "duplicate": archived(pool, "Guest.Created", 2),
        "updated": archived(pool, "Guest.Updated", 3),
        "group": archived(pool, "AppointmentGroup.Created", 4),
    }
    bad = samples.envelope("Appointment.Started", {"appointments": "x"}, "dead-1", "2024-01-01")
    dead = delivery(bad, received_us=DAY + 5 * MINUTE)
    assert write(pool, dead) == {dead.ingest_id: "dead"}
    ids["dead"] = dead.ingest_id
    client = redis.Redis.from_url(settings.redis_url)
    producer, keys = stream.Producer(client, settings), stream.Keys.of(settings)
    held = contract.Delivery.accept(example("Employee.Updated"), "")
    producer.publish(held)
    consumer = stream.Consumer(client, settings)
    consumer.ensure_group()
    assert len(consumer.read_new("celery@b:0", 1, 10)) == 1
    producer.publish(dataclasses.replace(dead, mode=contract.REPLAY))
    waiting = contract.Delivery.accept(example("Employee.Created"), "", "east")
    producer.publish(waiting)
    ids.update(held=held.ingest_id, waiting=waiting.ingest_id)
    assert client.xlen(keys.deliveries) == 3
    yield ids
    client.close()


def found(invoke, wanted: str, *options: str) -> dict:
    return json.loads(invoke("find", wanted, "--json", *options).stdout)


def test_an_ingest_id_finds_the_delivery_its_duplicate_and_what_it_wrote(invoke, known):
    """By the ingest id of a processed delivery: it and its later duplicate, oldest first,
    with event and entity; the row it wrote, with the delivery that wrote it last (a later
    Guest.Updated); the stream read whole."""
    document = found(invoke, known["created"])
    first, second = document["deliveries"]
    assert (first["ingest_id"], first["status"]) == (known["created"], "processed")
    assert first["where"].startswith("processed 2")
    assert (first["delivery_id"], first["event_id"]) == GUEST_CREATED
    assert (first["event_type"], first["entity_id"]) == ("Guest.Created", GUEST)
    assert first["received_at"] == "2024-01-01T00:01:00+00:00" and first["stream"] == []
    assert (second["ingest_id"], second["status"]) == (known["duplicate"], "duplicate")
    assert second["duplicate_of"] == known["created"]
    assert second["where"] == f"duplicate of {known['created']}"
    [row] = document["rows"]
    assert (row["table"], row["row"]["guest_id"]) == ("guests", GUEST)
    assert row["written_by"]["ingest_id"] == known["updated"]
    assert row["written_by"]["event_type"] == "Guest.Updated"
    assert document["stream"] == {"scanned": 3, "length": 3, "complete": True}


@pytest.mark.parametrize("kind", [0, 1], ids=["envelope id", "event_id"])
def test_an_envelope_id_or_event_id_finds_every_copy(invoke, known, kind):
    """By the envelope `id` or the `event_id`: the processed delivery and its duplicate."""
    document = found(invoke, GUEST_CREATED[kind])
    assert [d["ingest_id"] for d in document["deliveries"]] == [
        known["created"],
        known["duplicate"],
    ]


def test_an_entity_id_finds_every_delivery_about_it_and_its_current_row(invoke, known):
    """By a guest id: every delivery of that guest, and the guests row (names included: on
    request) with the event that wrote it last. By an appointment id: the group event that
    carried it (found through its container) and the appointments row."""
    document = found(invoke, GUEST)
    assert [d["ingest_id"] for d in document["deliveries"]] == [
        known["created"],
        known["duplicate"],
        known["updated"],
    ]
    [row] = document["rows"]
    assert row["written_by"]["ingest_id"] == known["updated"]
    assert row["row"]["first_name"] == "Joseph"
    document = found(invoke, APPOINTMENT.upper())
    [group] = document["deliveries"]
    assert (group["ingest_id"], group["entity_id"]) == (known["group"], GROUP)
    [row] = document["rows"]
    assert (row["table"], row["row"]["appointment_id"]) == ("appointments", APPOINTMENT)
    assert row["row"]["appointment_group_id"] == GROUP
    assert row["written_by"] == {
        "ingest_id": known["group"],
        "event_type": "AppointmentGroup.Created",
        "event_at": "2024-07-25T14:52:06.769417+00:00",
        "received_at": "2024-01-01T00:04:00+00:00",
    }


def test_a_delivery_waiting_in_the_stream(invoke, known):
    """By the ingest id from the 202 of a delivery no worker has read: waiting in the stream,
    with its source and its envelope's event type; by its envelope id too (its body names it)."""
    for wanted in (known["waiting"], EMPLOYEE_CREATED):
        [d] = found(invoke, wanted)["deliveries"]
        assert (d["ingest_id"], d["status"], d["source"]) == (known["waiting"], None, "east")
        assert (d["event_type"], d["delivery_id"]) == ("Employee.Created", EMPLOYEE_CREATED)
        assert d["where"] == "waiting in the stream, not yet handed to a worker"
        [entry] = d["stream"]
        assert entry["mode"] == "live" and entry["handed_out"] is None


def test_a_delivery_handed_to_a_worker(invoke, known):
    """An entry read by a worker and not acknowledged: which worker, how many times."""
    [d] = found(invoke, known["held"])["deliveries"]
    [entry] = d["stream"]
    assert entry["handed_out"]["consumer"] == "celery@b:0"
    assert entry["handed_out"]["times_delivered"] == 1
    assert d["where"].startswith("handed to worker celery@b:0 1 time(s) (last ")


def test_a_dead_letter_and_its_replay_on_the_way(invoke, known):
    """By its envelope id: dead with class, attempts and reason, and its replay waiting in
    the stream; the table says both in one line."""
    [d] = found(invoke, "dead-1")["deliveries"]
    assert (d["ingest_id"], d["status"], d["failure_class"]) == (known["dead"], "dead", "schema")
    assert d["where"] == (
        "dead (schema, 1 attempt(s)): appointments: Not a valid list (got string); "
        "sent again (replay): waiting in the stream, not yet handed to a worker"
    )
    out = " ".join(invoke("find", known["dead"]).stdout.split())
    assert known["dead"] in out and "sent again (replay): waiting in the stream" in out


def test_the_table(invoke, known):
    """The default output: a row per delivery with where it is now, then each current-state
    row with the delivery that wrote it last; names on stdout, on request, never in a log
    line (stderr)."""
    result = invoke("find", GUEST, "--scan-limit", "0")
    out = result.stdout
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert any(
        line.startswith("2024-01-01 00:02:00Z") and known["duplicate"] in line
        and f"duplicate of {known['created']}" in line
        for line in lines
    )  # fmt: skip
    assert f"guests {GUEST}: last written by {known['updated']} (Guest.Updated" in " ".join(lines)
    assert "first_name Joseph" in lines and "last_name Harrington" in lines
    assert "Joseph" not in result.stderr and "Harrington" not in result.stderr


def test_the_stream_is_searched_only_so_far(invoke, known):
    """--scan-limit 1 reads one entry from the oldest: an entry further along is found by its
    ingest id still (read around the time the id was issued), not by its envelope id, and the
    output says how much was read."""
    document = found(invoke, known["waiting"], "--scan-limit", "1")
    assert [d["ingest_id"] for d in document["deliveries"]] == [known["waiting"]]
    assert document["stream"] == {"scanned": 1, "length": 3, "complete": False}
    invoke("find", EMPLOYEE_CREATED, "--scan-limit", "1", code=exits.FAILED)
    out = " ".join(invoke("find", known["waiting"], "--scan-limit", "1").stdout.split())
    assert "Searched the oldest 1 of 3 stream entries" in out


def test_nothing_found_exits_1(invoke, known):
    """An id nothing concerns: said on stderr, exit 1, nothing on stdout."""
    for wanted in ("no-such-id", str(uuid.uuid4())):
        result = invoke("find", wanted, code=exits.FAILED)
        assert result.stdout == "" and f"Nothing found for {wanted}." in result.stderr


class TestRedisDown:
    @pytest.fixture
    def settings(self, settings):
        return dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")

    def test_what_postgres_holds_is_shown_and_exit_3(self, invoke, pool):
        """Redis unreachable: the archived delivery is still shown, the stream is said not to
        have been searched, and the exit code is 3."""
        ingest_id = archived(pool, "Guest.Created", 1)
        result = invoke("find", ingest_id, "--json", code=exits.UNAVAILABLE)
        document = json.loads(result.stdout)
        assert [d["ingest_id"] for d in document["deliveries"]] == [ingest_id]
        assert document["stream"] == {"unreachable": "redis: ConnectionError"}
        assert "stream not searched" in result.stderr


class TestPostgresDown:
    @pytest.fixture
    def settings(self, settings):
        return dataclasses.replace(settings, database_url="postgresql://postgres@127.0.0.1:1/x")

    def test_exit_3_with_one_line(self, invoke):
        """Postgres unreachable: one line saying so, exit 3."""
        result = invoke("find", "anything", code=exits.UNAVAILABLE)
        assert result.stdout == "" and "postgres unreachable at" in result.stderr
