"""The hostile corpus through the ingress and the worker: each body ends in a clear result.

The ingress answers 202 (or 413, 404, 401, 400, 200 where that is the rule), never 5xx; the
worker ends every delivery processed, or dead with a failure class and a reason that quotes
nothing from the body, and never raises; one bad delivery never sinks its batch; the drain loop
leaves nothing pending, and sets aside as retries_exhausted what crashes it all the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg_pool
import pytest
import redis
from structlog.testing import capture_logs

from ingress import app as ingress_app
from tests import hostile
from tests.fixtures import database, draining, wsgi
from worker.pipeline import batch
from zenoti_ingest import contract, stream
from zenoti_ingest.settings import Settings

CASES = hostile.all_cases()


def params(cases: list[hostile.Case]) -> list:
    """Cases as pytest params; a known bug is a strict xfail expecting its exception."""
    return [
        pytest.param(
            case,
            id=case.name,
            marks=[pytest.mark.xfail(strict=True, raises=case.raises, reason=case.bug)]
            if case.bug
            else [],
        )
        for case in cases
    ]


@pytest.fixture(scope="module")
def shared_db(
    postgres_service, pg_admin, template_db
) -> Iterator[tuple[str, psycopg_pool.ConnectionPool]]:
    """One migrated database for the whole module: every case writes its own rows."""
    with hostile.cloned_database(postgres_service.url, pg_admin, template_db) as found:
        yield found


@pytest.fixture
def ingress(redis_url):
    """The ingress with the default limits (1 MiB body), on this test's Redis database."""
    settings = Settings(redis_url=redis_url, redis_prefix=f"zi_hostile_{uuid.uuid4().hex[:8]}")
    return settings, ingress_app.create_app(settings)


def stream_entries(settings: Settings) -> list[contract.Delivery]:
    client = redis.Redis.from_url(settings.redis_url)
    return [stream.decode(f) for _, f in client.xrange(stream.Keys.of(settings).deliveries)]


def row(url: str, ingest_id: str) -> tuple[str, str | None, str | None]:
    [found] = database.fetch(
        url,
        "SELECT status, failure_class, error FROM webhook_events WHERE ingest_id = %(id)s",
        {"id": ingest_id},
    )
    return found


def archived_hint(url: str, ingest_id: str) -> tuple[str, str | None]:
    """(path_hint, event_type) as the archive keeps them."""
    [found] = database.fetch(
        url,
        "SELECT path_hint, event_type FROM webhook_events WHERE ingest_id = %(id)s",
        {"id": ingest_id},
    )
    return found


def check_settled(
    case: hostile.Case, status: str, failure_class: str | None, error: str | None
) -> None:
    """The clear result the case promises, and a reason that quotes nothing of the body."""
    assert status in hostile.SETTLED, f"{case.name}: {status}"
    if status == "dead":
        assert failure_class and error, f"{case.name}: dead without a class and a reason"
    else:
        assert (failure_class, error) == (None, None), case.name
    if case.worker == "processed":
        assert status == "processed", f"{case.name}: {status} {failure_class} {error}"
    elif case.worker.startswith("dead:"):
        assert (status, failure_class) == ("dead", case.worker[5:]), (
            f"{case.name}: {status} {failure_class} {error}"
        )
    if case.reason is not None:
        assert status == "dead" and case.reason in error, f"{case.name}: {status} {error}"
    assert hostile.leaks(error, case.body) == [], f"{case.name}: the reason quotes the body"


@pytest.mark.parametrize("case", params(CASES))
def test_case_through_the_ingress_and_the_worker(case, ingress, shared_db):
    """POSTed to the ingress: its rule's answer and the exact bytes enqueued (or nothing); then
    one batch of the worker: processed or dead with a class and a clean reason, never an
    exception out of batch.write."""
    settings, app = ingress
    answer = wsgi.call(app, "POST", case.url, case.body)
    assert answer.status == case.ingress
    entries = stream_entries(settings)
    if case.ingress == 202:
        [delivery] = entries
        assert answer.json() == {"ingest_id": delivery.ingest_id}
        assert (delivery.body, delivery.path_hint) == (case.body, case.hint)
    else:
        assert entries == []
        delivery = database.delivery(case.body, case.hint)  # as if it came another way
    url, pool = shared_db
    statuses = database.write(pool, delivery)
    status, failure_class, error = row(url, delivery.ingest_id)
    assert statuses == {delivery.ingest_id: status}
    check_settled(case, status, failure_class, error)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_every_verb_gives_the_same_answers(method, ingress):
    """PUT and PATCH answer every case as POST does: the verb is the configurer's choice."""
    _, app = ingress
    answers = {case.name: wsgi.call(app, method, case.url, case.body).status for case in CASES}
    assert answers == {case.name: case.ingress for case in CASES}


@pytest.mark.parametrize(
    ("size", "event_type"),
    [
        (100, "AppointmentGroup.Created"),
        (100, "Invoice.Closed"),
        (10_000, "AppointmentGroup.Created"),
    ],
)
def test_big_groups_land_every_appointment(size, event_type, ingress, shared_db):
    """The body limit never turns a valid delivery away: the largest samples grown to 100
    appointments are well under the default 1 MiB and land all 100 rows; 10,000 are refused at
    the door, and still land whole when written (a replay, or a higher limit)."""
    settings, app = ingress
    if event_type == "Invoice.Closed":
        body, path = hostile.invoice_with(size), "/Invoice.Closed"
        appointments = json.loads(body)["invoice"]["appointments"]
    else:
        body, path = hostile.group_with(size, f"big-{uuid.uuid4()}"), ""
        appointments = json.loads(body)["data"]["appointments"]
    ids = [a["id"] for a in appointments]
    answer = wsgi.call(app, "POST", hostile.WEBHOOK_PATH + path, body)
    if size == 100:
        assert len(body) < settings.max_body_bytes // 4 and answer.status == 202
        [delivery] = stream_entries(settings)
    else:
        assert answer.status == 413
        delivery = database.delivery(body, path.lstrip("/"))
    url, pool = shared_db
    assert database.write(pool, delivery) == {delivery.ingest_id: "processed"}
    assert database.fetch(
        url,
        "SELECT count(*) FROM appointments WHERE appointment_id = ANY(%(ids)s::uuid[])",
        {"ids": ids},
    ) == [(len(ids),)]


NOT_EVENT_TYPES = [
    "/not an event",
    "/Appointment.Started/extra",
    "/Appointment..Started",
    "/.Appointment",
    "/Appointment.",
    "/1Appointment",
    "/A.B.C.D.E.F.G",
    "/Guest\x00Created",
    "/Guest%00Created",
    "/\u00c4ppointment",
    "/Appointment Started",
    "/'; DROP TABLE webhook_events; --",
    "/../../etc/passwd",
    "/@nosuch/Appointment.Started",
    "/@east/Appointment.Started",
    "/@/../Guest.Created",
    "/Guest.Created;x",
    "/Guest.Created\n",
    "/Guest.Created?x=1",
]


@pytest.mark.parametrize("path", NOT_EVENT_TYPES)
def test_a_path_that_is_not_an_event_type_is_404_and_keeps_nothing(path, ingress):
    """Not an event type name, or an unknown source: 404 for any verb, nothing enqueued."""
    settings, app = ingress
    for method in ("POST", "PUT", "PATCH", "GET"):
        answer = wsgi.call(app, method, hostile.WEBHOOK_PATH + path, b'{"a": 1}')
        assert (answer.status, answer.json()) == (404, {"error": "not_found"})
    assert stream_entries(settings) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_an_empty_body_is_a_ping_and_keeps_nothing(method, ingress):
    """Empty, with or without Content-Length: 200 ping, nothing enqueued."""
    settings, app = ingress
    sized = wsgi.call(app, method, hostile.WEBHOOK_PATH + "/Appointment.Started", b"")
    chunked = wsgi.call(
        app, method, hostile.WEBHOOK_PATH, content_length=False, stream=io.BytesIO(b"")
    )
    assert [sized.json(), chunked.json()] == [{"ping": True}] * 2
    assert stream_entries(settings) == []


def test_body_limit_edges(ingress):
    """Exactly the limit is accepted; one byte more is 413, unread with a Content-Length and
    read at most one byte past the limit when chunked."""
    settings, app = ingress
    limit = settings.max_body_bytes
    assert wsgi.call(app, "POST", hostile.WEBHOOK_PATH, b"[" * limit).status == 202
    over = b"[" * (limit + 1)
    assert (
        wsgi.call(app, "POST", hostile.WEBHOOK_PATH, over, stream=wsgi.NeverRead(over)).status
        == 413
    )
    chunked = io.BytesIO(over + b"]" * 1000)
    answer = wsgi.call(app, "POST", hostile.WEBHOOK_PATH, content_length=False, stream=chunked)
    assert answer.status == 413 and chunked.tell() == limit + 1
    assert [d.body for d in stream_entries(settings)] == [b"[" * limit]


SIGNATURES = [
    None,
    "",
    "sha256=",
    "sha256=zz",
    "\u00e9\u00e9",
    "0" * 10_000,
    "=" * 64,
    "sha256 = \t",
    "AA-BB-CC",
    base64.b64encode(b"\x00" * 32).decode(),
    "v1,abc",
    "sha256=" + "A" * 64,
]


def test_a_signed_source_refuses_hostile_signatures_and_accepts_hostile_bodies(redis_url):
    """With a secret, no header, an empty, malformed, non-ASCII or huge one is 401 for every
    hostile body, and the right HMAC is 202 whatever the bytes."""
    settings = Settings(
        redis_url=redis_url,
        redis_prefix=f"zi_hostile_{uuid.uuid4().hex[:8]}",
        webhook_secrets={"": ("s3cret",)},
    )
    app = ingress_app.create_app(settings)
    bodies = [c.body for c in CASES if c.ingress == 202 and c.path == ""][:40]
    for body in bodies:
        for signature in SIGNATURES:
            headers = {} if signature is None else {"HTTP_ZENOTI_WEBHOOK_SIGNATURE": signature}
            answer = wsgi.call(app, "POST", hostile.WEBHOOK_PATH, body, headers=headers)
            assert (answer.status, answer.json()) == (401, {"error": "unauthenticated"})
        digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest().upper()
        signed = {
            "HTTP_ZENOTI_WEBHOOK_SIGNATURE": "-".join(
                digest[i : i + 2] for i in range(0, len(digest), 2)
            )
        }
        assert wsgi.call(app, "POST", hostile.WEBHOOK_PATH, body, headers=signed).status == 202
    got = [d.body for d in stream_entries(settings)]
    assert got == bodies


HINTLESS_BODIES = {
    "bare": (b'{"id": "x"}', "dead"),
    "envelope": (
        json.dumps(
            {
                "id": "env-1",
                "event_type": "Foo.Bar",
                "data": {"id": "x"},
                "event_timestamp": hostile.TIMESTAMP,
            }
        ).encode(),
        "processed",
    ),
}


@pytest.mark.parametrize("body", sorted(HINTLESS_BODIES))
@pytest.mark.parametrize(
    "hint",
    [
        "not an event",
        "Guest\x00Created",
        "Guest.Created\n",
        "A" + "b" * 40,
        "A" + hostile.junk(10_000, 3),
    ],
    ids=["spaces", "nul", "newline", "word-of-41", "10001-characters"],
)
def test_a_hint_that_is_not_an_event_type_is_not_kept(hint, body, pool, settings):
    """The ingress refuses such a URL (404), but a stream entry made by hand, or a replay, can
    hold any hint: with a bare body the delivery is dead as unknown_event_type; with an envelope
    (whose event_type wins) it is processed. Either way the archive keeps no hint ('') and takes
    no event type from it (NUL and over-long text are what Postgres refuses)."""
    content, expected = HINTLESS_BODIES[body]
    d = database.delivery(content, hint)
    assert database.write(pool, d) == {d.ingest_id: expected}
    status, failure_class, error = row(settings.database_url, d.ingest_id)
    path_hint, event_type = archived_hint(settings.database_url, d.ingest_id)
    if expected == "dead":
        assert (failure_class, error) == (
            "unknown_event_type",
            "the URL's event type is not a Zenoti event type name",
        )
        assert (path_hint, event_type) == ("", None)
    else:
        assert (status, failure_class, path_hint, event_type) == ("processed", None, "", "Foo.Bar")


WORD = "A" + "b" * 39  # 40 characters: the longest word an event type name may have


def test_the_longest_event_type_name_is_accepted_and_kept(ingress, shared_db):
    """Six dotted words of 40 characters is the longest event type name: 202, and the worker
    keeps it as an unknown type's event type and hint (it fits their indexes); a 41st character
    in any word, or a seventh word, is 404 and nothing is enqueued."""
    settings, app = ingress
    longest = ".".join([WORD] * 6)
    for at in range(6):
        words = [WORD] * 6
        words[at] += "c"
        too_long = wsgi.call(app, "POST", f"{hostile.WEBHOOK_PATH}/{'.'.join(words)}", b"{}")
        assert too_long.status == 404, at
    seven = wsgi.call(app, "POST", f"{hostile.WEBHOOK_PATH}/{longest}.{WORD}", b"{}")
    assert seven.status == 404
    answer = wsgi.call(app, "POST", f"{hostile.WEBHOOK_PATH}/{longest}", b'{"id": "x"}')
    assert answer.status == 202
    [delivery] = stream_entries(settings)
    assert delivery.path_hint == longest
    url, pool = shared_db
    assert database.write(pool, delivery) == {delivery.ingest_id: "processed"}
    assert archived_hint(url, delivery.ingest_id) == (longest, longest)


@pytest.mark.parametrize("length", ["-1", "-1048577", "-99999999999999999999"])
def test_a_negative_content_length_is_400_and_keeps_nothing(length, ingress):
    """A negative Content-Length is refused before the body is read: 400, nothing enqueued."""
    settings, app = ingress
    answer = wsgi.call(
        app,
        "POST",
        hostile.WEBHOOK_PATH,
        content_length=False,
        stream=wsgi.NeverRead(b'{"a": 1}'),
        headers={"CONTENT_LENGTH": length},
    )
    assert (answer.status, answer.json()) == (400, {"error": "bad_content_length"})
    assert stream_entries(settings) == []


# --- The drain loop: the stream, batches, acknowledgement --------------------------------------


@pytest.fixture
def fast(settings):
    """Settings whose drain rounds are short."""
    return replace(settings, drain_round_seconds=0.05, read_block_ms=10)


def test_the_whole_corpus_drains_as_one_batch(fast, pool):
    """Every case the ingress accepts (but one with a known bug), posted and drained together:
    one round settles them all with no exception (a bad delivery never sinks the batch), each
    as it promises, nothing left pending."""
    app = ingress_app.create_app(fast)
    cases = [c for c in CASES if c.ingress == 202 and c.bug is None]
    ids = {}
    for case in cases:
        answer = wsgi.call(app, "POST", case.url, case.body)
        ids[answer.json()["ingest_id"]] = case
    assert draining.until_empty(fast, pool, max_rounds=1).errors == []
    rows = database.fetch(
        fast.database_url,
        "SELECT ingest_id::text, status, failure_class, error FROM webhook_events",
    )
    assert {r[0] for r in rows} == set(ids)
    for ingest_id, status, failure_class, error in rows:
        check_settled(ids[ingest_id], status, failure_class, error)


def by_name(name: str) -> hostile.Case:
    return next(c for c in CASES if c.name == name)


def test_a_delivery_nobody_can_read_does_not_take_its_batch_mates_with_it(fast, pool):
    """An exception nobody foresaw while reading one delivery (decimal.Overflow, summing a
    package balance of 1e1000000) makes that delivery alone dead as `unexpected`, in the first
    round: the good delivery read in the same batch is processed, the drain raises nothing, and
    the log says where it broke (error_type, at) but gives no message (it could quote the
    body)."""
    app = ingress_app.create_app(fast)
    good_id = wsgi.call(
        app,
        "POST",
        by_name("sql-in-guest-fields.json").url,
        by_name("sql-in-guest-fields.json").body,
    ).json()["ingest_id"]
    unforeseen = by_name("number-huge-package-balance.json")
    unforeseen_id = wsgi.call(app, "POST", unforeseen.url, unforeseen.body).json()["ingest_id"]
    with capture_logs() as logged:
        assert draining.until_empty(fast, pool, max_rounds=1).errors == []
    assert row(fast.database_url, good_id) == ("processed", None, None)
    status, failure_class, error = row(fast.database_url, unforeseen_id)
    assert (status, failure_class) == ("dead", "unexpected")
    assert error.startswith("Overflow while reading the delivery")
    [unexpected] = [e for e in logged if e["event"] == "delivery_unexpected_error"]
    assert set(unexpected) == {"event", "log_level", "ingest_id", "error_type", "at"}
    assert (unexpected["ingest_id"], unexpected["error_type"]) == (unforeseen_id, "Overflow")
    assert re.fullmatch(r".+\.py:\d+", unexpected["at"]), unexpected["at"]
    assert "drain_failed" not in {e["event"] for e in logged}


def test_a_stream_entry_with_an_over_long_hint_settles_in_one_round(fast, pool):
    """The ingress refuses a 10,001-character event type (404), but a stream entry made by hand
    can carry one: drained with a good delivery, it is dead as unknown_event_type in the first
    round, without its hint or an event type (no index could hold them), and the good one is
    processed. (Before event type names were bounded it stayed pending forever.)"""
    case = by_name("long-path-hint")
    assert wsgi.call(ingress_app.create_app(fast), "POST", case.url, case.body).status == 404
    bad = database.delivery(case.body, case.hint)
    good = database.delivery(by_name("sql-in-guest-fields.json").body)
    client = redis.Redis.from_url(fast.redis_url)
    for d in (bad, good):
        client.xadd(stream.Keys.of(fast).deliveries, stream.encode(d))
    assert draining.until_empty(fast, pool, max_rounds=1).errors == []
    status, failure_class, error = row(fast.database_url, bad.ingest_id)
    assert (status, failure_class) == ("dead", "unknown_event_type") and case.reason in error
    assert archived_hint(fast.database_url, bad.ingest_id) == ("", None)
    assert row(fast.database_url, good.ingest_id) == ("processed", None, None)


class WorkerCrash(Exception):
    """Stands in for what still stops a drain round while a body is parsed."""


def test_a_delivery_that_crashes_the_drain_is_dead_after_max_deliveries(fast, pool, monkeypatch):
    """The safety net under what batch.prepare can't set aside itself (the worker killed, or
    out of memory, while parsing one body; no hostile body of the corpus does it any more), made
    to happen by a prepare that raises for one body: that delivery is handed out again each
    round, and past max_deliveries it is dead as retries_exhausted without being parsed again,
    not retried forever."""
    poison = by_name("deep-100k-open-brackets.json")
    parsed = []
    real_prepare = batch.prepare

    def prepare(delivery, attempts):
        if delivery.body == poison.body:
            parsed.append(attempts)
            raise WorkerCrash
        return real_prepare(delivery, attempts)

    monkeypatch.setattr(batch, "prepare", prepare)
    app = ingress_app.create_app(fast)
    ingest_id = wsgi.call(app, "POST", poison.url, poison.body).json()["ingest_id"]
    drained = draining.until_empty(fast, pool, max_rounds=fast.max_deliveries + 2)
    assert drained.rounds == fast.max_deliveries + 1 and set(drained.errors) == {"WorkerCrash"}
    assert parsed == list(range(1, fast.max_deliveries + 1))
    status, failure_class, _ = row(fast.database_url, ingest_id)
    assert (status, failure_class) == ("dead", "retries_exhausted")
