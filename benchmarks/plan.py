"""How big a run is: --quick (under two minutes) or the full run (about ten)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    load_seconds: int  # each ingress measurement
    warmup_seconds: int  # load before each ingress measurement, not counted
    drain_total: int  # deliveries pre-loaded for our worker
    baseline_total: int  # the first ones of the same set, for the one-task-per-webhook worker
    e2e_seconds: float
    e2e_rate: float | None  # None: half the sustained maximum, measured first
    sustain_seconds: int  # the sustained-maximum load, when e2e_rate is None
    connections: int = 64
    overhead_rounds: int = 3  # metrics on/off pairs, for each of ingress and drain
    scaling_total: int = 10_000  # deliveries pre-loaded for each of 1, 2 and 4 worker nodes


QUICK = Plan(
    "quick",
    load_seconds=4,
    warmup_seconds=2,
    drain_total=10_000,
    baseline_total=2_000,
    e2e_seconds=8,
    e2e_rate=2_000,
    sustain_seconds=0,
)
FULL = Plan(
    "full",
    load_seconds=20,
    warmup_seconds=3,
    drain_total=100_000,
    baseline_total=20_000,
    e2e_seconds=60,
    e2e_rate=None,
    sustain_seconds=15,
    overhead_rounds=5,
    scaling_total=50_000,
)
