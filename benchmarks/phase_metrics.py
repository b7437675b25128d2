"""Phase 4: what recording metrics costs: our ingress, then our worker, run twice side by side,
one with ZENOTI_INGEST_METRICS=1 and one with =0, at the same moment on the same machine.

Side by side rather than one after the other: on a shared 2-core machine the rate of one run
moves by a factor of two from minute to minute, far more than the cost measured; two copies
loaded at once share whatever the machine gives, so the one that does more work per request
(or per delivery) gets through fewer. Each copy has its own key prefix (its own stream and
counts), the worker its own database; which one starts first swaps from round to round. Two
figures per round: the ratio of the rates, and of the CPU time each process tree spent per
request or delivery (steadier: a copy that got less of the machine for a while is slower, not
costlier). Each figure is the median of the rounds'.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import http_load
import phase_drain
import procs
import servers
import stores
import verify
from payloads import DataSet
from plan import Plan

from zenoti_ingest import stream

REDIS_DB = 11  # the drain phase's, emptied before and after
SIDES = {"on": "1", "off": "0"}  # ZENOTI_INGEST_METRICS


@dataclass(frozen=True)
class Side:
    rate: float  # requests or deliveries per second
    cpu_us: float  # process-tree CPU per request or delivery


@dataclass(frozen=True)
class Pairs:
    """The two copies, metrics on and off, round by round."""

    rounds: list[dict[str, Side]]

    @property
    def ratio(self) -> float:
        """Rate on / rate off: the median of the rounds' ratios."""
        return statistics.median(r["on"].rate / r["off"].rate for r in self.rounds)

    @property
    def cpu_ratio(self) -> float:
        """CPU per unit off / on: the rate the CPU cost alone allows, on against off."""
        return statistics.median(r["off"].cpu_us / r["on"].cpu_us for r in self.rounds)

    def describe(self, unit: str, per: str) -> str:
        by_round = ", ".join(f"{r['on'].rate:,.0f}/{r['off'].rate:,.0f}" for r in self.rounds)
        cpu = ", ".join(f"{r['on'].cpu_us:,.0f}/{r['off'].cpu_us:,.0f}" for r in self.rounds)
        return (
            f"{self.ratio:.3f}x ({unit} on/off by round: {by_round}); from CPU per {per}: "
            f"{self.cpu_ratio:.3f}x (us on/off: {cpu})"
        )


@dataclass(frozen=True)
class Overhead:
    ingress: Pairs
    drain: Pairs


def run(group: procs.Group, plan: Plan, body_file: Path, dataset: DataSet) -> Overhead:
    return Overhead(
        Pairs([_ingress_round(group, plan, body_file, n) for n in range(plan.overhead_rounds)]),
        Pairs([_drain_round(group, dataset, n) for n in range(plan.overhead_rounds)]),
    )


def _sides(round_number: int) -> list[str]:
    """Which copy starts first swaps each round."""
    return list(SIDES) if round_number % 2 == 0 else list(reversed(SIDES))


def _env(redis_url: str, database_url: str, side: str, port: int = servers.OURS.port) -> dict:
    return {
        **servers.ours_env(redis_url, database_url, port),
        "ZENOTI_INGEST_METRICS": SIDES[side],
        "ZENOTI_INGEST_REDIS_PREFIX": f"zi_bench_metrics_{side}",
        "ZENOTI_INGEST_WORKER_NAME": f"zi-bench-metrics-{side}@%h",
    }


def _cpu(proc: procs.Proc) -> float:
    return proc.resources()[1]


def _ingress_round(
    group: procs.Group, plan: Plan, body_file: Path, round_number: int
) -> dict[str, Side]:
    """Both ingresses under closed-loop load at once, half the connections each."""
    connections = plan.connections // 2
    procs.say(
        f"metrics overhead, ingress round {round_number + 1}: on and off side by side, "
        f"{connections} connections each, {plan.load_seconds} s"
    )
    with stores.redis_database(REDIS_DB), group.scope():
        url = stores.redis_url(REDIS_DB)
        started = {}
        for side in _sides(round_number):
            port = procs.free_port()
            command = servers.ours_serve_command(port)
            env = _env(url, "", side, port)
            started[side] = servers.start_server(
                group, f"metrics-{side}-ingress", command, env, port
            )
        for stage, seconds in (("warmup", plan.warmup_seconds), ("load", plan.load_seconds)):
            cpu_before = {side: _cpu(server.proc) for side, server in started.items()}
            loads = {
                side: http_load.start_closed_loop(
                    group,
                    f"metrics-{side}-{stage}",
                    server.webhook_url,
                    body_file,
                    seconds,
                    connections,
                )
                for side, server in started.items()
            }
            results = {
                side: http_load.LoadResult.from_output(group.finish(load, seconds + 60))
                for side, load in loads.items()
            }
            cpu = {side: _cpu(server.proc) - cpu_before[side] for side, server in started.items()}
    sides = {
        side: Side(result.rps, cpu[side] / max(result.requests, 1) * 1e6)
        for side, result in results.items()
    }
    for side, measured in sides.items():
        procs.say(
            f"  {side}: {measured.rate:,.0f} requests/s, {measured.cpu_us:,.0f} us CPU per "
            f"request, {results[side].failed} failed"
        )
    return sides


def _drain_round(group: procs.Group, dataset: DataSet, round_number: int) -> dict[str, Side]:
    """Both workers draining their own copy of the backlog at once. Each one's rate and CPU
    are taken while both run: from its first settled delivery until either has settled them
    all (the other, left alone after that, would drain faster)."""
    total = len(dataset.items)
    procs.say(
        f"metrics overhead, drain round {round_number + 1}: on and off side by side, "
        f"{total:,} deliveries each"
    )
    with (
        stores.redis_database(REDIS_DB) as client,
        stores.database("zi_bench_metrics_on") as on_url,
        stores.database("zi_bench_metrics_off") as off_url,
    ):
        urls = {"on": on_url, "off": off_url}
        redis_url = stores.redis_url(REDIS_DB)
        keys = {side: stream.Keys(f"zi_bench_metrics_{side}").deliveries for side in SIDES}
        for side in SIDES:
            phase_drain.preload_stream(client, dataset, f"zi_bench_metrics_{side}")

        def settled() -> dict[str, int]:
            return {side: total - client.xlen(key) for side, key in keys.items()}

        with group.scope():
            workers = {
                side: group.start(
                    f"metrics-{side}-worker", phase_drain.WORKER, _env(redis_url, urls[side], side)
                )
                for side in _sides(round_number)
            }
            first: dict[str, tuple[float, int, float]] = {}  # when, settled, CPU seconds

            def one_done() -> dict[str, int] | None:
                now, counts = time.monotonic(), settled()
                for side, count in counts.items():
                    if count and side not in first:
                        first[side] = (now, count, _cpu(workers[side]))
                return counts if max(counts.values()) >= total else None

            timeout = 120 + total / phase_drain.MIN_RATE
            watch = list(workers.values())
            counts = procs.wait_until(one_done, timeout=timeout, what="a drain", watch=watch)
            ended, cpu_end = time.monotonic(), {s: _cpu(w) for s, w in workers.items()}
            procs.wait_until(
                lambda: min(settled().values()) >= total,
                timeout=timeout,
                what="both drains",
                watch=watch,
            )
        sides = {}
        for side in SIDES:
            since, count_then, cpu_then = first.get(side, (ended, counts[side], cpu_end[side]))
            settled_meanwhile = max(counts[side] - count_then, 1)
            sides[side] = Side(
                settled_meanwhile / max(ended - since, 1e-3),
                (cpu_end[side] - cpu_then) / settled_meanwhile * 1e6,
            )
            archive = verify.archive(urls[side], dataset)
            procs.say(
                f"  {side}: {sides[side].rate:,.0f} events/s, {sides[side].cpu_us:,.0f} us CPU "
                f"per delivery; {archive.describe()}"
            )
    return sides
