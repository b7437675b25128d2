"""The pace of a source's API calls, shared in Redis by every backfill process of the source.

Zenoti counts calls per organization (60 a minute by default, shared with its other
integrations). We take `api_calls_per_minute` of them, paced rather than in bursts: each call
reserves a start time at least window/N after the one before (rate.lua, atomic in Redis, on
Redis's clock), so no window of that length ever holds more than N calls, whichever process
made them. Zenoti's own headers slow everyone down further: a 429's Retry-After, and a bucket
that `RateLimit-Remaining` / `RateLimit-Reset` say is nearly empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

from zenoti_ingest import errors, logs
from zenoti_ingest.settings import Settings

log = logs.get_logger(__name__)

_SCRIPT = (Path(__file__).parent / "rate.lua").read_text()
# Calls land at Zenoti a little later or earlier than they leave (network, sleep precision):
# spacing them 5% wider keeps a window's count at N even when two of them drift together.
MARGIN = 1.05


class Limiter:
    """One source's share of the organization's bucket."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        source: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._script = client.register_script(_SCRIPT)
        self._key = f"{settings.redis_prefix}:backfill:rate:{source or '-'}"
        self.window_seconds = settings.api_rate_window_seconds
        self.interval_seconds = MARGIN * self.window_seconds / settings.api_calls_per_minute
        self._sleep = sleep

    def wait(self) -> float:
        """Reserve the next call's start and sleep until then; the seconds slept."""
        seconds = self._run("take", self.interval_seconds)
        if seconds > 0:
            self._sleep(seconds)
        return seconds

    def defer(self, seconds: float) -> None:
        """No process of this source starts a call in the next `seconds`."""
        if seconds > 0:
            self._run("defer", seconds)
            log.debug("api_rate_deferred", seconds=round(seconds, 3))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Slow down to what Zenoti says is left: with `remaining` calls until the bucket
        refills in `reset` seconds, no call sooner than reset / remaining from now."""
        remaining = header_number(headers.get("RateLimit-Remaining"))
        reset = header_number(headers.get("RateLimit-Reset"))
        if remaining is None or reset is None:
            return
        spread = reset if remaining <= 0 else reset / remaining
        if spread > self.interval_seconds:
            self.defer(spread)

    def _run(self, mode: str, seconds: float) -> float:
        try:
            return float(self._script(keys=[self._key], args=[mode, f"{seconds:.6f}"]))
        except redis.RedisError as exc:
            raise errors.TransientError(f"redis: {type(exc).__name__}") from exc


def header_number(text: str | None) -> float | None:
    """A header's value as a number; None when it is missing or not one (a Retry-After
    written as an HTTP date, say: the caller's default applies)."""
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
