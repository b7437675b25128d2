"""One function per route: receive, healthz, readyz."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ingress import auth, responses
from zenoti_ingest import contract, errors, logs, metrics, stream
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
_CHUNK = 65_536


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Route:
    """What the URL said: the source, the event type (if any), and the source's verifier."""

    source: str
    path_hint: str
    verifier: auth.Verifier | None


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The raw body, never more than `limit` bytes read (BodyTooLarge past it)."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        size = int(length)
        if size < 0:
            raise ValueError("negative Content-Length")
        if size > limit:
            raise BodyTooLarge  # refused before reading a byte
        return stream.read(size) if size else b""
    # No Content-Length (chunked): read up to one byte past the limit to tell.
    chunks, total = [], 0
    while total <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise BodyTooLarge
    return b"".join(chunks)


def receive(
    environ: dict[str, Any],
    start_response: responses.StartResponse,
    settings: Settings,
    enqueuer: stream.Producer,
    recorder: metrics.Recorder,
    route: Route,
) -> list[bytes]:
    def outcome(name: str) -> None:
        recorder.inc(metrics.REQUESTS, route.source, name)

    try:
        body = read_body(environ, settings.max_body_bytes)
    except BodyTooLarge:
        log.warning("delivery_too_large", max_bytes=settings.max_body_bytes)
        outcome("too_large")
        return responses.too_large(start_response, settings.max_body_bytes)
    except ValueError:  # a Content-Length that is not a number
        outcome("bad_request")
        return responses.send(start_response, 400, {"error": "bad_content_length"})
    if not body:
        # Zenoti's "test" button posts an empty, unsigned body: answer so the setup check
        # passes, keep nothing (there is nothing to keep).
        log.info("ping_received", source=route.source, path_hint=route.path_hint)
        outcome("ping")
        return responses.send(start_response, 200, {"ping": True})
    if route.verifier is not None and not route.verifier.verify(body, environ):
        log.warning(
            "delivery_unauthenticated",
            source=route.source,
            path_hint=route.path_hint,
            body_bytes=len(body),
        )
        outcome("unauthenticated")
        return responses.send(start_response, 401, {"error": "unauthenticated"})
    delivery = contract.Delivery.accept(body, route.path_hint, route.source)
    started = time.perf_counter()
    try:
        enqueuer.publish(delivery)
    except errors.EnqueueFailed as exc:
        log.error("delivery_enqueue_failed", ingest_id=delivery.ingest_id, reason=str(exc))
        outcome("enqueue_failed")
        return responses.unavailable(start_response, RETRY_AFTER_SECONDS)
    recorder.observe(metrics.ENQUEUE_SECONDS, time.perf_counter() - started)
    outcome("accepted")
    recorder.set(metrics.LAST_RECEIVED, delivery.received_at_us / 1e6, route.source)
    log.debug(
        "delivery_enqueued",
        ingest_id=delivery.ingest_id,
        source=route.source,
        path_hint=route.path_hint,
    )
    return responses.accepted(start_response, delivery.ingest_id)


def healthz(environ: dict[str, Any], start_response: responses.StartResponse) -> list[bytes]:
    return responses.send(start_response, 200, {"status": "ok"})


def readyz(
    environ: dict[str, Any], start_response: responses.StartResponse, enqueuer: stream.Producer
) -> list[bytes]:
    if enqueuer.ready():
        return responses.send(start_response, 200, {"status": "ready"})
    return responses.unavailable(start_response, RETRY_AFTER_SECONDS)
