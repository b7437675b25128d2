"""`zenoti-ingest dlq` and `reprocess` against real Redis and Postgres, drained by worker code."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid

import pytest
import redis

from cli import dlq, exits
from tests.fixtures import draining, samples
from tests.fixtures.database import delivery, fetch, write
from worker.pipeline import batch, handlers
from zenoti_ingest import contract, errors, stream

DAY_1 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z, in microseconds
DAY_2 = DAY_1 + 86_400_000_000
SECRET = "Jane Secretperson"  # personal data: only `dlq show` may print it


def started(delivery_id: str, **changes) -> bytes:
    data = samples.repaired_json("appointment-started")
    data["appointments"][0].update(changes)
    return samples.envelope("Appointment.Started", data, delivery_id, "2024-01-01T10:00:00Z")


def make_dead(pool, d: contract.Delivery, attempts: int = 11) -> contract.Delivery:
    """Archive `d` as a dead letter, as a worker does after too many crashed attempts."""
    item = batch.reject(batch.unparsed(d, attempts), errors.RetriesExhausted("gave up"))
    assert batch.write(pool, [item]) == {d.ingest_id: "dead"}
    return d


@pytest.fixture
def drain_stream(settings, pool):
    """Drain everything on the stream with the worker's own drainer; a round that fails is
    tried again, as the drain task does (its entries stay pending and come back)."""
    fast = dataclasses.replace(settings, drain_round_seconds=0.2, read_block_ms=20)

    def run() -> draining.Drained:
        drained = draining.until_empty(fast, pool)
        assert drained.empty, "the stream did not drain"
        return drained

    return run


@pytest.fixture
def letters(pool):
    """One dead letter of each failure class, and a processed delivery that is not one."""
    made = {
        "retries_exhausted": make_dead(
            pool, delivery(started("zen-1"), "Appointment.Started", received_us=DAY_1)
        ),
        "parse": delivery(b'{"name": "' + SECRET.encode() + b'"', "Guest.Created", DAY_1 + 1),
        "schema": delivery(
            samples.envelope(
                "Appointment.Started", {"appointments": "x"}, "zen-2", "2024-01-02T10:00:00Z"
            ),
            "",
            DAY_2,
        ),
        "unknown_event_type": dataclasses.replace(
            delivery(b'{"a": 1}', "", DAY_2 + 1), source="spa-east"
        ),
    }
    for failure_class in ("parse", "schema", "unknown_event_type"):
        assert write(pool, made[failure_class]) == {made[failure_class].ingest_id: "dead"}
    made["processed"] = delivery(started("zen-3", id=str(uuid.uuid4())))
    write(pool, made["processed"])
    return {name: d.ingest_id for name, d in made.items()}


def listed(invoke, *args: str) -> list[str]:
    return [d["ingest_id"] for d in json.loads(invoke("dlq", "list", "--json", *args).stdout)]


def test_list_shows_dead_letters_only_with_every_filter(invoke, letters):
    """Each filter narrows the list; processed deliveries never appear."""
    assert set(listed(invoke)) == {
        letters[c] for c in ("retries_exhausted", "parse", "schema", "unknown_event_type")
    }
    assert listed(invoke, "--failure-class", "parse") == [letters["parse"]]
    assert set(listed(invoke, "--failure-class", "parse", "--failure-class", "schema")) == {
        letters["parse"],
        letters["schema"],
    }
    assert set(listed(invoke, "--event-type", "Appointment.Started")) == {
        letters["retries_exhausted"],
        letters["schema"],
    }
    assert set(listed(invoke, "--since", "2024-01-02")) == {
        letters["schema"],
        letters["unknown_event_type"],
    }
    assert set(listed(invoke, "--until", "2024-01-02T00:00:00+00:00")) == {
        letters["retries_exhausted"],
        letters["parse"],
    }
    assert listed(invoke, "--reason-contains", "NOT VALID json") == [letters["parse"]]
    assert listed(invoke, "--source", "spa-east") == [letters["unknown_event_type"]]
    assert listed(invoke, "--source", "", "--limit", "1") == [letters["retries_exhausted"]]


def test_list_table_and_json_carry_no_body(invoke, letters):
    """The table has one row per dead letter with its class and reason; no body anywhere."""
    table = invoke("dlq", "list").stdout
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["INGEST", "ID", "RECEIVED", "EVENT"]
    parse_line = next(line for line in lines if letters["parse"] in line)
    assert (
        "Guest.Created" in parse_line and "parse" in parse_line and "not valid JSON" in (parse_line)
    )
    assert len(lines) == 5
    document = json.loads(invoke("dlq", "list", "--json").stdout)
    assert {d["failure_class"] for d in document} == {
        "retries_exhausted",
        "parse",
        "schema",
        "unknown_event_type",
    }
    for output in (table, json.dumps(document)):
        assert SECRET not in output


def test_summary_counts_per_failure_class_and_event_type(invoke, letters):
    """--summary --json counts per class and type; the table has the same numbers."""
    summary = json.loads(invoke("dlq", "list", "--summary", "--json").stdout)
    assert summary["total"] == 4
    assert summary["failure_classes"] == {
        "parse": 1,
        "retries_exhausted": 1,
        "schema": 1,
        "unknown_event_type": 1,
    }
    assert summary["event_types"] == {"Appointment.Started": 2, "Guest.Created": 1, "": 1}
    narrowed = json.loads(
        invoke("dlq", "list", "--summary", "--json", "--event-type", "Appointment.Started").stdout
    )
    assert narrowed["failure_classes"] == {"retries_exhausted": 1, "schema": 1}
    table = invoke("dlq", "list", "--summary").stdout
    assert any(line.split() == ["total", "4"] for line in table.splitlines())
    assert any(
        line.split() == ["schema", "Appointment.Started", "1"] for line in table.splitlines()
    )


def test_show_prints_the_whole_record_and_the_body_pretty(invoke, letters, pool):
    """show: every field, JSON bodies indented, others shown safely; --json is exact."""
    out = invoke("dlq", "show", letters["retries_exhausted"]).stdout
    assert "failure class" in out and "retries_exhausted" in out and "gave up" in out
    assert '  "event_type": "Appointment.Started",' in out  # pretty-printed
    out = invoke("dlq", "show", letters["parse"]).stdout
    assert SECRET in out and "text, not JSON" in out
    document = json.loads(invoke("dlq", "show", "--json", letters["retries_exhausted"]).stdout)
    assert document["status"] == "dead" and document["attempts"] == 11
    assert document["body_json"] == json.loads(started("zen-1"))
    assert base64.b64decode(document["body_base64"]) == started("zen-1")
    binary = delivery(b"\xff\x1b[31m\x00", "Guest.Created")
    write(pool, binary)
    out = invoke("dlq", "show", binary.ingest_id).stdout
    assert "\x1b" not in out and r"b'\xff\x1b[31m\x00'" in out
    invoke("dlq", "show", str(uuid.uuid4()), code=exits.FAILED)


def test_replay_dry_run_says_what_and_changes_nothing(invoke, letters, settings):
    """--dry-run lists the ids it would replay; the stream and the table are untouched."""
    result = invoke("dlq", "replay", "--failure-class", "retries_exhausted", "--dry-run")
    assert result.stdout.split() == [letters["retries_exhausted"]]
    assert "Would replay 1" in result.stderr
    assert redis.Redis.from_url(settings.redis_url).xlen(stream.Keys.of(settings).deliveries) == 0
    assert fetch(
        settings.database_url, "SELECT count(*) FROM webhook_events WHERE status = 'dead'"
    ) == [(4,)]


def test_replay_goes_through_the_stream_and_applies(
    invoke, letters, settings, drain_stream, monkeypatch
):
    """A replayed dead letter is a stream entry in replay mode; the drainer applies it."""
    monkeypatch.setattr(dlq, "PROGRESS_FROM", 1)
    ingest_id = letters["retries_exhausted"]
    result = invoke("dlq", "replay", ingest_id)
    assert "Replaying" in result.stderr  # the progress bar, on stderr
    assert result.stdout.split() == [ingest_id]
    [(_, fields)] = redis.Redis.from_url(settings.redis_url).xrange(
        stream.Keys.of(settings).deliveries
    )
    sent = stream.decode(fields)
    assert (sent.ingest_id, sent.mode, sent.body) == (ingest_id, contract.REPLAY, started("zen-1"))
    assert drain_stream().deliveries == 1
    assert fetch(
        settings.database_url,
        "SELECT status, attempts FROM webhook_events WHERE ingest_id = %(id)s",
        {"id": ingest_id},
    ) == [("processed", 12)]
    assert fetch(settings.database_url, "SELECT count(*) FROM appointments") == [(2,)]
    assert "Nothing to replay." in invoke("dlq", "replay", ingest_id).stderr


def test_replaying_twice_applies_once(invoke, letters, settings, drain_stream):
    """Two replays queued before any worker runs: one archive row, one event, one apply."""
    ingest_id = letters["retries_exhausted"]
    invoke("dlq", "replay", ingest_id)
    invoke(
        "dlq",
        "replay",
        "--event-type",
        "Appointment.Started",
        "--failure-class",
        "retries_exhausted",
    )
    drain_stream()
    assert fetch(
        settings.database_url,
        "SELECT status, count(*) FROM webhook_events WHERE ingest_id = %(id)s GROUP BY 1",
        {"id": ingest_id},
    ) == [("processed", 1)]
    assert fetch(
        settings.database_url,
        "SELECT count(*) FROM events WHERE ingest_id = %(id)s",
        {"id": ingest_id},
    ) == [(1,)]
    assert fetch(settings.database_url, "SELECT count(*) FROM appointments") == [(2,)]
    invoke("dlq", "replay", ingest_id)  # settled now: skipped, nothing sent
    assert redis.Redis.from_url(settings.redis_url).xlen(stream.Keys.of(settings).deliveries) == 0


def test_replay_of_an_event_that_arrived_again_meanwhile_is_a_duplicate(
    invoke, letters, pool, settings, drain_stream
):
    """Zenoti sent the event again while it sat dead: the replay applies nothing more."""
    again = delivery(started("zen-1"))
    assert write(pool, again) == {again.ingest_id: "processed"}
    invoke("dlq", "replay", letters["retries_exhausted"])
    drain_stream()
    assert fetch(
        settings.database_url,
        "SELECT status FROM webhook_events WHERE ingest_id = %(id)s",
        {"id": letters["retries_exhausted"]},
    ) == [("duplicate",)]
    assert fetch(
        settings.database_url, "SELECT ingest_id::text FROM events WHERE delivery_id = 'zen-1'"
    ) == [(again.ingest_id,)]


def test_two_replays_of_one_dead_letter_in_one_batch_settle_in_one_round(
    invoke, letters, drain_stream
):
    """The two stream entries of a dead letter replayed twice land in one batch cleanly."""
    invoke("dlq", "replay", letters["retries_exhausted"])
    invoke("dlq", "replay", letters["retries_exhausted"])
    drained = drain_stream()
    assert (drained.deliveries, drained.errors) == (2, [])


def test_replay_of_something_still_broken_stays_dead(invoke, letters, settings, drain_stream):
    """--all replays everything; what still fails is dead again with its attempts added."""
    invoke("dlq", "replay", code=exits.USAGE)  # neither ids, filters nor --all
    assert len(invoke("dlq", "replay", "--all").stdout.split()) == 4
    drained = drain_stream()
    assert (drained.deliveries, drained.errors) == (4, [])
    assert fetch(
        settings.database_url, "SELECT failure_class, attempts FROM dead_letters ORDER BY 1"
    ) == [("parse", 2), ("schema", 2), ("unknown_event_type", 2)]


def test_replay_refuses_unknown_ids(invoke, letters, settings):
    """A typo in an id sends nothing at all."""
    result = invoke("dlq", "replay", letters["parse"], str(uuid.uuid4()), code=exits.FAILED)
    assert "no such delivery" in result.stderr
    assert redis.Redis.from_url(settings.redis_url).xlen(stream.Keys.of(settings).deliveries) == 0
    invoke("dlq", "replay", "not-a-uuid", code=exits.USAGE)


def test_discard_keeps_the_row_with_its_reason(invoke, letters, settings):
    """Discarded: out of the list, still in webhook_events with body and reason; not replayed."""
    ingest_id = letters["parse"]
    invoke("dlq", "discard", ingest_id, code=exits.USAGE)  # --reason is required
    assert invoke(
        "dlq", "discard", ingest_id, "--reason", "test data", "--dry-run"
    ).stdout.split() == [ingest_id]
    assert letters["parse"] in listed(invoke)
    assert invoke("dlq", "discard", ingest_id, "--reason", "test data").stdout.split() == [
        ingest_id
    ]
    assert fetch(
        settings.database_url,
        "SELECT status, discard_reason, length(body) > 0 FROM"
        " webhook_events WHERE ingest_id = %(id)s",
        {"id": ingest_id},
    ) == [("discarded", "test data", True)]
    assert ingest_id not in listed(invoke)
    assert "already discarded" in invoke("dlq", "discard", ingest_id, "--reason", "x").stderr
    assert "Nothing to replay." in invoke("dlq", "replay", ingest_id).stderr
    invoke("dlq", "discard", letters["processed"], "--reason", "x", code=exits.FAILED)
    assert fetch(
        settings.database_url,
        "SELECT status FROM webhook_events WHERE ingest_id = %(id)s",
        {"id": letters["processed"]},
    ) == [("processed",)]


def test_reprocess_projects_archived_deliveries_again(
    invoke, pool, settings, drain_stream, monkeypatch
):
    """A type with no handler when it came is projected by reprocess; archive rows stay."""
    with monkeypatch.context() as patched:
        patched.delitem(handlers.HANDLERS, "Appointment.Started")
        d = delivery(started("zen-9"))
        assert write(pool, d) == {d.ingest_id: "processed"}
    assert fetch(settings.database_url, "SELECT count(*) FROM appointments") == [(0,)]
    invoke("reprocess", code=exits.USAGE)  # neither ids, filters nor --all
    dry = invoke("reprocess", "--event-type", "Appointment.Started", "--dry-run")
    assert dry.stdout.split() == [d.ingest_id]
    assert redis.Redis.from_url(settings.redis_url).xlen(stream.Keys.of(settings).deliveries) == 0
    assert "Nothing to reprocess." in invoke("reprocess", "--event-type", "Guest.Created").stderr
    invoke("reprocess", "--event-type", "Appointment.Started", "--since", "2023-11-14")
    assert drain_stream().deliveries == 1
    assert fetch(settings.database_url, "SELECT status FROM appointments") == [("started",)]
    assert fetch(
        settings.database_url, "SELECT status, count(*) FROM webhook_events GROUP BY 1"
    ) == [("processed", 1)]
