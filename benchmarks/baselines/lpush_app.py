"""The floor of any Redis-backed ingress: read the body, one LPUSH, answer 202."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any

import redis

KEY = "bench:lpush"


@functools.cache
def _redis() -> redis.Redis:
    """The client of this server process, on BENCH_REDIS_URL (servers.baseline_env sets it)."""
    return redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST":  # the readiness probe
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    _redis().lpush(KEY, body)
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
