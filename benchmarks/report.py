"""The closing table: every figure and ratio of a run, with its target, and the machine."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import http_load
import phase_drain
import phase_e2e
import phase_ingress
import phase_metrics
import phase_sustained
import redis
import resources
import stores
from plan import Plan

MB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    phase: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target

    def cells(self) -> list[str]:
        mark = {True: " ✓", False: " ✗", None: ""}[self.met]
        return [self.phase, self.figure, self.value, self.target + mark]


@dataclass
class Results:
    ingress: dict[str, phase_ingress.AppResult] | None = None
    drain: phase_drain.OursResult | None = None
    plain: phase_drain.PlainResult | None = None
    baseline: phase_drain.BaselineResult | None = None
    e2e: phase_e2e.E2EResult | None = None
    metrics: phase_metrics.Overhead | None = None
    body_bytes: int = 0
    notes: list[str] = field(default_factory=list)


def render(plan: Plan, results: Results, runtime_seconds: float) -> str:
    rows = [
        *ingress_rows(results.ingress),
        *drain_rows(results.drain, results.baseline, results.plain),
        *e2e_rows(results.e2e),
        *metrics_rows(results.metrics),
        *resource_rows(results),
    ]
    header = ["phase", "figure", "value", "target"]
    lines = [
        f"## zenoti-ingest benchmark: {plan.name} run, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"- Machine: {machine()}; load generator, servers, Redis and Postgres share it.",
        f"- Ingress load: {http_load.tool()}, {plan.connections} connections, "
        f"{plan.load_seconds} s per server after {plan.warmup_seconds} s of warm-up; "
        f"body: Appointment.Started in its envelope, {results.body_bytes:,} bytes.",
        f"- Runtime: {runtime_seconds / 60:.1f} min (`python benchmarks/bench.py"
        f"{' --quick' if plan.name == 'quick' else ''}`).",
        *(f"- {note}" for note in results.notes),
        "",
        _markdown_row(header),
        _markdown_row(["---"] * len(header)),
        *(_markdown_row(row.cells()) for row in rows),
    ]
    return "\n".join(lines) + "\n"


def ingress_rows(results: dict[str, phase_ingress.AppResult] | None) -> list[Row]:
    if not results:
        return []
    rows = [_ingress_row(result) for result in results.values()]
    ours, lpush, flask = results["ours"].load, results["lpush"].load, results["flask"].load
    return [
        *rows,
        _ratio("ingress", "requests/s: ours / Flask + apply_async", ours.rps / flask.rps, 4.0),
        _ratio("ingress", "requests/s: ours / read body + LPUSH", ours.rps / lpush.rps, 0.6),
        Row(
            "ingress",
            "p99: ours / read body + LPUSH",
            f"{ours.p99_ms / lpush.p99_ms:.2f}",
            "≤ 1.5",
            ours.p99_ms <= 1.5 * lpush.p99_ms,
        ),
    ]


def _ingress_row(result: phase_ingress.AppResult) -> Row:
    load = result.load
    ours = result.app.key == "ours"
    return Row(
        "ingress",
        result.app.label,
        f"{load.rps:,.0f} req/s; p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; "
        f"{load.failed} non-2xx/errors; {result.check()}",
        "0 non-2xx, every 2xx in Redis" if ours else "",
        (load.failed == 0 and result.all_enqueued) if ours else None,
    )


def drain_rows(
    ours: phase_drain.OursResult | None,
    baseline: phase_drain.BaselineResult | None,
    plain: phase_drain.PlainResult | None = None,
) -> list[Row]:
    rows = []
    if ours:
        rows += [
            Row("drain", f"ours: {ours.drain.total:,} deliveries", _drain_value(ours.drain)),
            Row(
                "drain",
                "after ours: archive",
                ours.archive.describe(),
                "0 lost, duplicates = redeliveries, poison dead",
                ours.archive.ok,
            ),
            Row(
                "drain",
                "after ours: appointments",
                ours.appointments.describe(),
                "= state from in-order events",
                ours.appointments.ok,
            ),
        ]
    if baseline:
        rows += [
            Row(
                "drain",
                f"one Celery task per webhook: {baseline.drain.total:,} deliveries",
                _drain_value(baseline.drain),
            ),
            Row(
                "drain",
                "after one task per webhook: appointments",
                baseline.appointments.describe(),
                "",
                None,
            ),
        ]
    if ours and baseline:
        rows.append(
            _ratio(
                "drain",
                "events/s: ours / one task per webhook",
                ours.drain.rate / baseline.drain.rate,
                8.0,
            )
        )
    if ours and plain:
        rows += [
            Row(
                "drain",
                f"one plain process, no Celery: {plain.drain.total:,} deliveries",
                _drain_value(plain.drain),
            ),
            _ratio(
                "drain",
                "events/s: ours / one plain process",
                ours.drain.rate / plain.drain.rate,
                0.5,
            ),
        ]
    return rows


def _drain_value(drain: phase_drain.Drain) -> str:
    return (
        f"{drain.rate:,.0f} events/s ({drain.seconds:.1f} s from first to last settled; "
        f"start-up {drain.startup_seconds:.1f} s)"
    )


def e2e_rows(e2e: phase_e2e.E2EResult | None) -> list[Row]:
    if not e2e:
        return []
    load, observed = e2e.load, e2e.observed_ms
    p50, p99, worst = e2e.database_ms
    return [
        *_sustained_rows(e2e.sustained),
        Row(
            "end to end",
            "steady rate (loadgen.py)",
            f"target {e2e.target_rate:,.0f}/s, sent {load.rps:,.0f}/s ({load.requests:,}); "
            f"{load.failed} non-2xx/errors; stream backlog peaked at {e2e.max_backlog:,}",
            "0 non-2xx",
            load.failed == 0,
        ),
        Row(
            "end to end",
            "receipt → batch transaction start (processed_at, database)",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms",
        ),
        Row(
            "end to end",
            f"receipt → committed, seen by polling ({e2e.samples:,} sampled)",
            f"p50 {observed['p50_ms']:.0f} ms, p99 {observed['p99_ms']:.0f} ms, "
            f"max {observed['max_ms']:.0f} ms; {e2e.unseen} never seen",
            "p99 < 250 ms",
            observed["p99_ms"] < 250 and e2e.unseen == 0,
        ),
        Row(
            "end to end",
            "lost / applied twice",
            f"{e2e.lost} / {e2e.not_processed}; appointments {e2e.appointments:,} "
            f"for {e2e.processed:,} processed",
            "0 / 0",
            e2e.lost == 0 and e2e.not_processed == 0 and e2e.appointments == e2e.processed,
        ),
    ]


def _sustained_rows(sustained: phase_sustained.Sustained | None) -> list[Row]:
    if sustained is None:
        return []
    load = sustained.load
    return [
        Row(
            "end to end",
            "sustained maximum: ingress and worker together (wrk, unique bodies)",
            f"ingress accepted {load.rps:,.0f}/s (p99 {load.p99_ms:.0f} ms, {load.failed} "
            f"non-2xx/errors); worker wrote {sustained.commit_rate:,.0f}/s; backlog "
            f"{sustained.backlog:,} at the end. The steady rate below is half the worker's.",
        )
    ]


def resource_rows(results: Results) -> list[Row]:
    drain, baseline, e2e = results.drain, results.baseline, results.e2e
    rows = []
    if drain:
        usage = drain.drain.usage
        rows += [
            _memory_row("worker RSS over the drain", usage),
            _cpu_row("worker CPU per delivery, drain", usage, drain.drain.total),
        ]
    if baseline:
        rows.append(
            _cpu_row(
                "one task per webhook: worker CPU per delivery, drain",
                baseline.drain.usage,
                baseline.drain.total,
            )
        )
    if e2e:
        ingress, worker = e2e.usage
        rows += [
            _memory_row("ingress RSS over the end-to-end run", ingress),
            _memory_row("worker RSS over the end-to-end run", worker),
            _cpu_row("ingress CPU per request, end to end", ingress, e2e.load.requests),
            _cpu_row("worker CPU per delivery, end to end", worker, e2e.processed),
        ]
    return rows


def _memory_row(figure: str, usage: resources.Usage) -> Row:
    return Row(
        "resources",
        figure,
        f"{usage.start / MB:,.0f} MB at start, {usage.settled / MB:,.0f} MB after a "
        f"quarter, {usage.end / MB:,.0f} MB at end ({usage.growth:+.1%} since the "
        f"quarter; peak {usage.peak / MB:,.0f} MB)",
        "flat (within 10%)",
        abs(usage.growth) <= 0.10,
    )


def _cpu_row(figure: str, usage: resources.Usage, count: int) -> Row:
    per_item = usage.cpu_seconds / count * 1e6 if count else float("nan")
    return Row(
        "resources",
        figure,
        f"{per_item:,.0f} us of process-tree CPU ({usage.cores:.2f} cores busy on "
        "average; Redis and Postgres not included)",
    )


def metrics_rows(overhead: phase_metrics.Overhead | None) -> list[Row]:
    """What recording metrics costs: the issue's floor is 95% of the rate without."""
    if overhead is None:
        return []
    return [
        Row(
            "metrics",
            f"{what}, metrics on / off (median of {len(pairs.rounds)} side-by-side rounds)",
            pairs.describe(unit, per),
            "≥ 0.95x",
            pairs.ratio >= 0.95,
        )
        for what, pairs, unit, per in (
            ("ingress requests/s", overhead.ingress, "req/s", "request"),
            ("worker events/s", overhead.drain, "events/s", "delivery"),
        )
    ]


def _ratio(phase: str, figure: str, ratio: float, at_least: float) -> Row:
    return Row(phase, figure, f"{ratio:.2f}x", f"≥ {at_least:g}x", ratio >= at_least)


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, {service_versions()}"
    )


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def service_versions() -> str:
    client = redis.Redis.from_url(stores.redis_url(10))
    try:
        redis_version = client.info("server")["redis_version"]
    finally:
        client.close()
    postgres_version = str(stores.scalar(stores.maintenance_url(), "SHOW server_version"))
    return f"Redis {redis_version}, PostgreSQL {postgres_version.split()[0]}"
