"""Properties (hypothesis): whatever the bytes, the ingress never fails and the worker settles.

Every delivery ends processed, duplicate or dead; a dead one has a failure class and a reason
that quotes no string of the body; a URL hint that is not an event type name is not kept. Each
example is a batch of deliveries written together, so one bad delivery in a batch is exercised
too. The general strategies make lone surrogates now and then, but not what they would rarely
or never reach: integers past 4,300 digits (json.dumps can't write them), text over 2.7 kB,
timestamps that overflow in UTC. The last tests target each of those on purpose, beside a good
delivery in the same batch, and check the exact outcome.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg_pool
import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ingress import app as ingress_app
from tests import hostile
from tests.fixtures import database, wsgi
from worker.pipeline import batch, handlers
from zenoti_ingest import contract, stream
from zenoti_ingest.settings import Settings

# Moderate counts: the machine is small and shared; each example is a batch of deliveries.
# No example database: nothing is written into the working tree.
SOME = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(
    max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

EVENT_TYPES = sorted(handlers.HANDLERS)
# Past the ingress, a hint may be anything (a stream entry made by hand, a replay).
NOT_EVENT_TYPES = ["not an event", "Guest\x00Created", "A" + "b" * 40, "A" * 10_001]
HINTS = st.sampled_from(["", "Some.Future.Event", *EVENT_TYPES, *NOT_EVENT_TYPES])
TIMESTAMP = "2024-05-01T10:00:00.0000001Z"


def _sample_documents() -> list[tuple[str, Any]]:
    """(event type, JSON document) of every sample that is JSON once its typos are mended."""
    documents = []
    for case in hostile.canary_cases(hostile.Canaries()):
        if case.name.startswith("canary:"):
            documents.append((case.hint, json.loads(case.body)))
    return documents


SAMPLES = _sample_documents()

# JSON values, lone surrogates among them (st.text leaves them out).
lone_surrogates = st.tuples(st.text(max_size=8), st.characters(categories=["Cs"])).map("".join)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | lone_surrogates
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=16,
)


@st.composite
def envelopes(draw) -> bytes:
    """An envelope whose every part may be wrong: type, id, timestamp, data."""
    document = {
        "id": draw(st.text(max_size=12) | json_values),
        "event_type": draw(st.sampled_from(EVENT_TYPES) | json_values),
        "event_timestamp": draw(st.just(TIMESTAMP) | json_values),
        "data": draw(st.dictionaries(st.text(max_size=12), json_values, max_size=6) | json_values),
    }
    for key in draw(st.sets(st.sampled_from(sorted(document)), max_size=2)):
        del document[key]
    return json.dumps(document).encode()


def _paths(document: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path to a value in a JSON document."""
    yield path
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*path, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            yield from _paths(value, (*path, i))


def _changed(value: Any, how: str, other: Any) -> Any:
    match how:
        case "nul":
            return value + "\u0000" if isinstance(value, str) else "\u0000"
        case "type":  # the same content as another JSON type
            if isinstance(value, str):
                return [value]
            if isinstance(value, dict | list):
                return json.dumps(value)
            return str(value) if value is not None else {}
        case "empty":
            return "" if not isinstance(value, dict | list) else type(value)()
        case "nil_guid":
            return "00000000-0000-0000-0000-000000000000"
        case "not_guid":
            return "b9e61937-d5ce-46d5-be26-2659280d65t3"
        case _:
            return other


@st.composite
def mutated_samples(draw) -> tuple[bytes, str]:
    """A real sample with 1 to 4 changes: keys dropped, values given another type or value,
    NULs inserted, GUIDs broken; its delivery id made fresh so that it is not a duplicate."""
    event_type, original = draw(st.sampled_from(SAMPLES))
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        how = draw(
            st.sampled_from(["drop", "nul", "type", "empty", "nil_guid", "not_guid", "value"])
        )
        if how == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = _changed(parent[path[-1]], how, draw(json_values))
    if isinstance(document, dict) and "data" in document:
        document["id"] = str(uuid.uuid4())
    return json.dumps(document).encode(), event_type


def byte_mutations(body: bytes) -> st.SearchStrategy[bytes]:
    """The body with a few bytes flipped, cut or inserted."""

    def mutate(edits: list[tuple[int, int, int]]) -> bytes:
        out = bytearray(body)
        for kind, at, byte in edits:
            at %= max(len(out), 1)
            if kind == 0:
                out[at : at + 1] = bytes([byte])
            elif kind == 1:
                del out[at:]
            else:
                out.insert(at, byte)
        return bytes(out)

    return st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ).map(mutate)


raw_bodies = st.tuples(
    st.binary(max_size=200)
    | st.sampled_from([s for _, s in SAMPLES])
    .map(lambda d: json.dumps(d).encode())
    .flatmap(byte_mutations),
    HINTS,
)
json_bodies = st.tuples(json_values.map(lambda v: json.dumps(v).encode()), HINTS)
envelope_bodies = st.tuples(envelopes(), st.just(""))


@pytest.fixture(scope="module")
def batch_db(
    postgres_service, pg_admin, template_db
) -> Iterator[tuple[str, psycopg_pool.ConnectionPool]]:
    """One database for the module's examples: each example writes rows of its own."""
    with hostile.cloned_database(postgres_service.url, pg_admin, template_db) as found:
        yield found


def settle(batch_db, bodies: list[tuple[bytes, str]]) -> list[tuple[str, str | None, str | None]]:
    """Write the batch through prepare/write, check every delivery's row, and return each
    delivery's (status, failure_class, error), in the batch's order."""
    url, pool = batch_db
    deliveries = [database.delivery(body, hint) for body, hint in bodies]
    statuses = batch.write(pool, [batch.prepare(d, 1) for d in deliveries])
    rows = {
        str(ingest_id): (status, failure_class, error, path_hint)
        for ingest_id, status, failure_class, error, path_hint in database.fetch(
            url,
            "SELECT ingest_id, status, failure_class, error, path_hint FROM webhook_events"
            " WHERE ingest_id = ANY(%(ids)s::uuid[])",
            {"ids": [d.ingest_id for d in deliveries]},
        )
    }
    for d in deliveries:
        status, failure_class, error, path_hint = rows[d.ingest_id]
        assert statuses[d.ingest_id] == status in hostile.SETTLED
        event(f"{status} {failure_class or ''}".strip())
        if status == "dead":
            assert failure_class and error, d.body
        assert hostile.leaks(error, d.body) == [], (error, d.body)
        named = contract.EVENT_TYPE.fullmatch(d.path_hint) is not None
        assert path_hint == (d.path_hint if named else ""), d.path_hint[:50]
    return [rows[d.ingest_id][:3] for d in deliveries]


GOOD = json.dumps(
    {"id": "good", "event_type": "Foo.Bar", "event_timestamp": TIMESTAMP, "data": {"id": "x"}}
)


def good() -> tuple[bytes, str]:
    """A delivery that is processed (an unknown event type, kept in events), made unique."""
    return GOOD.replace('"good"', f'"good-{uuid.uuid4()}"').encode(), ""


def settle_beside_a_good_one(
    batch_db, body: bytes, hint: str = ""
) -> tuple[str, str | None, str | None]:
    """Settle the body in a batch with a good delivery, which must be processed; its row."""
    found, mate = settle(batch_db, [(body, hint), good()])
    assert mate == ("processed", None, None)
    return found


@SOME
@given(bodies=st.lists(raw_bodies, min_size=1, max_size=6))
def test_arbitrary_bytes_settle(bodies, batch_db):
    """Random bytes, and samples with bytes flipped, cut or inserted, on any URL."""
    settle(batch_db, bodies)


@SOME
@given(bodies=st.lists(json_bodies | envelope_bodies, min_size=1, max_size=6))
def test_arbitrary_json_settles(bodies, batch_db):
    """Any JSON value as a bare body on any URL, and envelopes with any part wrong."""
    settle(batch_db, bodies)


@SOME
@given(bodies=st.lists(mutated_samples(), min_size=1, max_size=6))
def test_mutated_samples_settle(bodies, batch_db):
    """Real samples with keys dropped, types changed, NULs inserted, GUIDs broken."""
    settle(batch_db, bodies)


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "GET", "DELETE", "OPTIONS", "BREW"]),
    rest=st.text(st.characters(max_codepoint=255), max_size=30)
    | st.sampled_from(EVENT_TYPES)
    | st.from_regex(contract.EVENT_TYPE, fullmatch=True)
    | st.from_regex(contract.EVENT_TYPE, fullmatch=True).map(lambda t: "@" + t + "/" + t),
    body=st.binary(max_size=64),
)
def test_the_ingress_never_fails(method, rest, body, redis_url):
    """Any method, path and body: a rule's answer, never 5xx; 202 exactly when the path names
    the default source and an event type (or none), and then the exact bytes are enqueued."""
    settings_ = Settings(redis_url=redis_url, redis_prefix=f"zi_prop_{uuid.uuid4().hex[:8]}")
    app = ingress_app.create_app(settings_)
    answer = wsgi.call(app, method, f"{hostile.WEBHOOK_PATH}/{rest}", body)
    client = redis.Redis.from_url(redis_url)
    enqueued = [stream.decode(f) for _, f in client.xrange(stream.Keys.of(settings_).deliveries)]
    source, hint = ingress_app.split_webhook_path(rest)
    routed = source == "" and (hint == "" or contract.EVENT_TYPE.fullmatch(hint) is not None)
    if not routed:
        assert answer.status == 404
    elif method not in ingress_app.WEBHOOK_METHODS:
        assert answer.status == 405
    else:
        assert answer.status == (202 if body else 200)
    event(str(answer.status))
    assert [(d.body, d.path_hint) for d in enqueued] == (
        [(body, hint)] if answer.status == 202 else []
    )


# --- Targeted: what the general strategies rarely or never make -------------------------------


@FEW
@given(
    key=st.text(max_size=8).filter(lambda k: k != "user_package_id"),
    surrogate=st.characters(categories=["Cs"]),
    event_type=st.sampled_from(["Foo.Bar", "Guest.Package.Creation"]),
)
def test_a_lone_surrogate_anywhere_is_dead_as_refused_by_the_database(
    key, surrogate, event_type, batch_db
):
    """A lone surrogate in any string the worker keeps (here one nobody reads) is valid JSON
    but not encodable as UTF-8: that delivery alone is dead, class database."""
    data = {"user_package_id": str(uuid.uuid4()), key: "x" + surrogate}
    body = json.dumps({"event_type": event_type, "event_timestamp": TIMESTAMP, "data": data})
    status, failure_class, error = settle_beside_a_good_one(batch_db, body.encode())
    assert (status, failure_class) == ("dead", "database")
    assert (
        error == "postgres refused a value (UnicodeEncodeError, SQLSTATE none: not "
        "encodable as UTF-8)"
    )


@FEW
@given(digits=st.integers(4301, 6000), hint=HINTS)
def test_an_integer_past_the_digit_limit_is_a_parse_error(digits, hint, batch_db):
    """json.loads refuses an integer over 4,300 digits (a ValueError of its own): dead, parse."""
    body = b'{"n": ' + b"7" * digits + b"}"
    assert settle_beside_a_good_one(batch_db, body, hint) == (
        "dead",
        "parse",
        "body is not usable JSON: a number is too large",
    )


@st.composite
def overflowing_timestamps(draw) -> str:
    """A time within the first or last hour of the date range whose offset takes it past in
    UTC (not 0001-01-01T00:00:00 itself: with any offset, that is the .NET default date,
    which means none)."""
    hours = draw(st.integers(1, 14))
    if draw(st.booleans()):
        return f"0001-01-01T00:{draw(st.integers(1, 59)):02d}:00+{hours:02d}:00"
    return f"9999-12-31T23:{draw(st.integers(0, 59)):02d}:00-{hours:02d}:00"


@FEW
@given(timestamp=overflowing_timestamps())
def test_an_event_timestamp_that_overflows_in_utc_is_a_schema_error(timestamp, batch_db):
    """A datetime that can't be told in UTC (before datetime.min, after datetime.max)."""
    body = json.dumps(
        {"id": str(uuid.uuid4()), "event_type": "Foo.Bar", "data": {}, "event_timestamp": timestamp}
    )
    status, failure_class, error = settle_beside_a_good_one(batch_db, body.encode())
    assert (status, failure_class) == ("dead", "schema")
    assert error.startswith("event_timestamp: "), error


LONG_TEXT = {  # (event type, data) with one value in an indexed text column
    "guests.code": (
        "Guest.Created",
        lambda text: {
            **hostile.repaired_page("guest-created")["data"],
            "id": str(uuid.uuid4()),
            "code": text,
        },
    ),
    "class_bookings.registration_id": (
        "Class.Booking.Created",
        lambda text: {**hostile.repaired_page("booking-created")["data"], "registration_id": text},
    ),
    "events.entity_id": ("Foo.Bar", lambda text: {"id": text}),
}


@FEW
@given(
    column=st.sampled_from(sorted(LONG_TEXT)),
    length=st.integers(3_000, 12_000),
    seed=st.integers(0, 2**16),
)
def test_text_past_the_index_limit_is_dead_as_refused_by_the_database(
    column, length, seed, batch_db
):
    """Text an index can't hold (over ~2.7 kB that doesn't compress) in an indexed column:
    Postgres refuses it (ProgramLimitExceeded), and that delivery alone is dead, class
    database; it is not retried as if the database were down."""
    event_type, data = LONG_TEXT[column]
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "event_type": event_type,
            "event_timestamp": TIMESTAMP,
            "data": data(hostile.junk(length, seed)),
        }
    )
    assert settle_beside_a_good_one(batch_db, body.encode()) == (
        "dead",
        "database",
        "postgres refused a value (ProgramLimitExceeded, SQLSTATE 54000)",
    )
