"""Capped exponential backoff with full jitter."""

from __future__ import annotations

import random


def delay_seconds(attempt: int, base: float, cap: float) -> float:
    """How long to wait before retry number `attempt` (0-based): uniform in [0, min(cap, base·2^n)].

    Full jitter spreads the retries of many workers that failed together (say, when Postgres
    restarted) instead of having them return all at once.
    """
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 32)))
