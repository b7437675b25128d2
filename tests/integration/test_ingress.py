"""The ingress contract against real Redis: what it answers and what it enqueues."""

from __future__ import annotations

import io

import pytest
import redis

from ingress import app as ingress_app
from tests.fixtures import ports, samples, wsgi
from zenoti_ingest import contract, stream
from zenoti_ingest.settings import Settings


@pytest.fixture
def ingress(redis_url):
    settings = Settings(redis_url=redis_url, max_body_bytes=4096, redis_prefix="zi_ingress")
    return settings, ingress_app.create_app(settings)


def stream_entries(settings: Settings) -> list[contract.Delivery]:
    client = redis.Redis.from_url(settings.redis_url)
    return [stream.decode(f) for _, f in client.xrange(stream.Keys.of(settings).deliveries)]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_accepts_raw_body_with_202_and_enqueues_it_byte_for_byte(ingress, method):
    """Any configured verb: 202 with the ingest id, and the exact bytes (invalid UTF-8 too)
    with the URL's event type in the stream."""
    settings, app = ingress
    body = samples.printed_body("appointment-started") + b"\xff\xfe\x00"
    answer = wsgi.call(app, method, "/webhooks/zenoti/Appointment.Started", body)
    assert answer.status == 202
    [entry] = stream_entries(settings)
    assert answer.json() == {"ingest_id": entry.ingest_id}
    assert (entry.body, entry.path_hint) == (body, "Appointment.Started")
    assert entry.received_at_us > 0


def test_bare_path_has_no_hint(ingress):
    """/webhooks/zenoti leaves the event type to the envelope."""
    settings, app = ingress
    assert wsgi.call(app, "POST", "/webhooks/zenoti", b"{}").status == 202
    assert stream_entries(settings)[0].path_hint == ""


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/webhooks/zenoti", 405, "POST, PUT, PATCH"),
        ("DELETE", "/webhooks/zenoti/Appointment.Started", 405, "POST, PUT, PATCH"),
        ("POST", "/healthz", 405, "GET, HEAD"),
        ("POST", "/webhooks/other", 404, None),
        ("POST", "/webhooks/zenoti/not an event/../x", 404, None),
        ("GET", "/", 404, None),
    ],
)
def test_wrong_method_and_unknown_path(ingress, method, path, status, allow):
    """405 carries Allow; unknown paths 404; both small JSON; nothing enqueued."""
    settings, app = ingress
    answer = wsgi.call(app, method, path, b"{}")
    assert answer.status == status
    assert answer.headers.get("allow") == allow
    assert answer.headers["content-type"] == "application/json" and "error" in answer.json()
    assert stream_entries(settings) == []


def test_oversized_body_is_refused_before_reading_it(ingress):
    """Content-Length over the limit: 413 without reading the body."""
    settings, app = ingress
    environ_body = wsgi.NeverRead(b"x" * 5000)
    answer = wsgi.call(app, "POST", "/webhooks/zenoti", b"x" * 5000, stream=environ_body)
    assert answer.status == 413 and answer.json()["max_bytes"] == 4096
    assert stream_entries(settings) == []


def test_oversized_chunked_body_reads_at_most_one_byte_past_the_limit(ingress):
    """No Content-Length (chunked): reading stops one byte past the limit, then 413."""
    _, app = ingress
    body = io.BytesIO(b"x" * 100_000)
    answer = wsgi.call(app, "POST", "/webhooks/zenoti", content_length=False, stream=body)
    assert answer.status == 413 and body.tell() == 4097


def test_chunked_body_within_limit_is_accepted(ingress):
    settings, app = ingress
    answer = wsgi.call(
        app, "POST", "/webhooks/zenoti", content_length=False, stream=io.BytesIO(b'{"a": 1}')
    )
    assert answer.status == 202 and stream_entries(settings)[0].body == b'{"a": 1}'


def test_empty_post_is_a_ping_and_enqueues_nothing(ingress):
    """Zenoti's setup test button posts an empty body: 200, nothing enqueued."""
    settings, app = ingress
    answer = wsgi.call(app, "POST", "/webhooks/zenoti", b"")
    assert answer.status == 200 and answer.json() == {"ping": True}
    assert stream_entries(settings) == []


def test_redis_unreachable_gives_503_with_retry_after_never_2xx():
    """No broker, no 2xx: 503 with Retry-After; readyz says not ready; healthz stays up."""
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{ports.free_port()}/0", enqueue_timeout_seconds=0.5
    )
    app = ingress_app.create_app(settings)
    answer = wsgi.call(app, "POST", "/webhooks/zenoti/Appointment.Started", b"{}")
    assert answer.status == 503 and int(answer.headers["retry-after"]) > 0
    assert wsgi.call(app, "GET", "/readyz").status == 503
    assert wsgi.call(app, "GET", "/healthz").status == 200


def test_redis_refusing_writes_gives_503(ingress):
    """A Redis that refuses the write (here: the stream key holds another type) → 503."""
    settings, app = ingress
    redis.Redis.from_url(settings.redis_url).set(
        stream.Keys.of(settings).deliveries, "not a stream"
    )
    assert wsgi.call(app, "POST", "/webhooks/zenoti", b"{}").status == 503


def test_readyz_when_redis_answers(ingress):
    _, app = ingress
    assert wsgi.call(app, "GET", "/readyz").json() == {"status": "ready"}


def test_waiting_for_replicas_that_are_not_there_gives_503(redis_url):
    """ZENOTI_INGEST_WAIT_REPLICAS: no 202 unless that many replicas acknowledged in time
    (the test Redis has none)."""
    settings = Settings(
        redis_url=redis_url, redis_prefix="zi_wait", wait_replicas=1, wait_timeout_ms=50
    )
    app = ingress_app.create_app(settings)
    assert wsgi.call(app, "POST", "/webhooks/zenoti", b"{}").status == 503
