"""The floor of any Redis-backed ingress: read the body, one LPUSH, answer 202."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import redis

KEY = "bench:lpush"

_redis = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10"))


def app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":  # the readiness probe
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    _redis.lpush(KEY, body)
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
