"""Capped exponential backoff with jitter: the worker's drain retries, backfill's API calls."""

from __future__ import annotations

import random


def delay_seconds(attempt: int, base: float, cap: float, floor: float = 0.0) -> float:
    """How long to wait before retry number `attempt` (0-based): uniform in
    [floor·c, c] where c = min(cap, base·2^n).

    Full jitter (floor 0) spreads the retries of many workers that failed together (say, when
    Postgres restarted) instead of having them return all at once. A floor keeps a minimum
    wait: backfill's calls (floor 0.5) already share one paced bucket, so a retry that came
    back at once would only spend a call on a server that just failed.
    """
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return random.uniform(floor * ceiling, ceiling)
