"""Small JSON answers: 202, 404, 405 + Allow, 413, 503 + Retry-After."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

StartResponse = Callable[..., object]

_JSON = ("Content-Type", "application/json")
_STATUS_LINES = {
    200: "200 OK",
    202: "202 Accepted",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    503: "503 Service Unavailable",
}


def send(
    start_response: StartResponse,
    status: int,
    payload: dict[str, object],
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    start_response(_STATUS_LINES[status], [_JSON, ("Content-Length", str(len(body))), *headers])
    return [body]


def accepted(start_response: StartResponse, ingest_id: str) -> list[bytes]:
    # The hot path: skip json.dumps, the id is a UUID and needs no escaping.
    body = b'{"ingest_id":"' + ingest_id.encode() + b'"}'
    start_response("202 Accepted", [_JSON, ("Content-Length", str(len(body)))])
    return [body]


def not_found(start_response: StartResponse) -> list[bytes]:
    return send(start_response, 404, {"error": "not_found"})


def method_not_allowed(start_response: StartResponse, allow: Iterable[str]) -> list[bytes]:
    allowed = ", ".join(allow)
    return send(
        start_response, 405, {"error": "method_not_allowed", "allow": allowed}, [("Allow", allowed)]
    )


def too_large(start_response: StartResponse, limit: int) -> list[bytes]:
    # Connection: close, because the rest of the body was never read.
    return send(
        start_response,
        413,
        {"error": "body_too_large", "max_bytes": limit},
        [("Connection", "close")],
    )


def unavailable(start_response: StartResponse, retry_after_seconds: int) -> list[bytes]:
    return send(
        start_response, 503, {"error": "unavailable"}, [("Retry-After", str(retry_after_seconds))]
    )
