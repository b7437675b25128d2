"""Phase 3a: the pipeline's sustained maximum, ingress and worker sharing the machine.

wrk posts new deliveries (unique ids) as fast as our ingress takes them while the worker
drains; what the worker commits per second over the last three quarters of the load is the
most the whole pipeline sustains here. The end-to-end run then sends half of that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import http_load
import payloads
import procs
from plan import Plan

if TYPE_CHECKING:
    from phase_e2e import Pipeline

_WRITTEN = "SELECT count(*) FROM webhook_events WHERE delivery_id LIKE %(deliveries)s"
MIN_DRAIN_RATE = 100  # deliveries/s below which draining the backlog is called stuck


@dataclass(frozen=True)
class Sustained:
    load: http_load.LoadResult  # what the ingress accepted
    commit_rate: float  # deliveries written per second, over the last three quarters
    backlog: int  # stream entries still waiting when the load stopped


def measure(pipeline: Pipeline, plan: Plan) -> Sustained:
    procs.say(
        f"sustained maximum: ours, ingress and worker together, {plan.connections} "
        f"connections, {plan.sustain_seconds} s with {http_load.tool()}"
    )
    template = pipeline.group.log_dir / "sustained-template.json"
    template.write_bytes(payloads.SUSTAINED.template())
    loader = http_load.start_closed_loop(
        pipeline.group,
        "load-sustained",
        pipeline.server.webhook_url,
        template,
        plan.sustain_seconds,
        plan.connections,
        numbered=True,
    )
    quarter = time.monotonic() + plan.sustain_seconds / 4
    procs.wait_until(
        lambda: time.monotonic() >= quarter,
        timeout=plan.sustain_seconds,
        what="a quarter of the load",
        watch=[loader, *pipeline.processes],
    )
    start, written_at_start = time.monotonic(), _written(pipeline)
    load = http_load.LoadResult.from_output(
        pipeline.group.finish(loader, timeout=plan.sustain_seconds + 60)
    )
    seconds, written = time.monotonic() - start, _written(pipeline) - written_at_start
    result = Sustained(load, written / seconds, pipeline.backlog())
    procs.say(
        f"  ingress accepted {load.rps:,.0f}/s, worker wrote {result.commit_rate:,.0f}/s; "
        f"draining a backlog of {result.backlog:,}"
    )
    procs.wait_until(
        lambda: pipeline.backlog() == 0,
        timeout=60 + result.backlog / MIN_DRAIN_RATE,
        what="the backlog to drain",
        watch=pipeline.processes,
    )
    return result


def _written(pipeline: Pipeline) -> int:
    return pipeline.conn.execute(_WRITTEN, payloads.SUSTAINED.patterns()).fetchone()[0]
