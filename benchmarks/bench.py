"""zenoti-ingest against the usual stack, in one command: ingress, worker drain, end to end.

    python benchmarks/bench.py [--quick] [--only ingress|drain|e2e|metrics|scaling ...]

Progress goes to stderr; the closing table to stdout and to benchmarks/results/latest.md.
Process logs of the last run are kept in benchmarks/results/logs/. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sys
import time

import payloads
import phase_drain
import phase_e2e
import phase_ingress
import phase_metrics
import phase_scaling
import procs
import report
import resources
from plan import FULL, QUICK, Plan

from zenoti_ingest import logs
from zenoti_ingest.settings import Settings

RESULTS_DIR = procs.BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"
PHASES = ("ingress", "drain", "e2e", "metrics", "scaling")
DEFAULT_PHASES = PHASES[:4]  # scaling (three drains and an ingress load) only when asked


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.drain_total:
        plan = dataclasses.replace(plan, drain_total=args.drain_total)
    logs.configure(Settings(log_level="WARNING", log_format="console"))
    for signum in (signal.SIGINT, signal.SIGTERM):  # both stop everything we started
        signal.signal(signum, _interrupt)
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    started = time.monotonic()
    try:
        with procs.Group(LOG_DIR) as group:
            results = run(group, plan, args.only or DEFAULT_PHASES)
    except KeyboardInterrupt:
        procs.say("interrupted: every process stopped, databases dropped")
        return 130
    table = report.render(plan, results, time.monotonic() - started)
    print(table)
    (RESULTS_DIR / "latest.md").write_text(table)
    procs.say(f"written to {RESULTS_DIR / 'latest.md'}; process logs in {LOG_DIR}")
    return 0


def run(group: procs.Group, plan: Plan, phases: list[str]) -> report.Results:
    results = report.Results(body_bytes=len(payloads.started_body()))
    for phase in PHASES:
        if phase in phases:
            with resources.MachineLoad() as load:
                RUNNERS[phase](group, plan, results)
            results.notes.append(f"Machine during {phase}: {load.describe()}.")
    return results


def run_ingress(group: procs.Group, plan: Plan, results: report.Results) -> None:
    body_file = LOG_DIR / "started-body.json"
    body_file.write_bytes(payloads.started_body())
    results.ingress = phase_ingress.run(group, plan, body_file)


def run_drain(group: procs.Group, plan: Plan, results: report.Results) -> None:
    dataset = payloads.drain_set(plan.drain_total)
    results.drain = phase_drain.run_ours(group, dataset)
    results.plain = phase_drain.run_plain(group, dataset)
    results.baseline = phase_drain.run_baseline(group, dataset.head(plan.baseline_total))
    results.notes.append(
        f"The one-task-per-webhook worker drains the first "
        f"{plan.baseline_total:,} of the same {plan.drain_total:,} "
        "deliveries; rates are per second."
    )


def run_e2e(group: procs.Group, plan: Plan, results: report.Results) -> None:
    results.e2e = phase_e2e.run(group, plan, plan.e2e_rate)


def run_metrics(group: procs.Group, plan: Plan, results: report.Results) -> None:
    """Ours again, twice side by side: metrics on against off (ZENOTI_INGEST_METRICS)."""
    body_file = LOG_DIR / "started-body.json"
    body_file.write_bytes(payloads.started_body())
    dataset = payloads.drain_set(plan.drain_total)
    results.metrics = phase_metrics.run(group, plan, body_file, dataset)


def run_scaling(group: procs.Group, plan: Plan, results: report.Results) -> None:
    """1, 2 and 4 worker nodes on one backlog, CPU per component: results/scaling.md."""
    scaling = phase_scaling.run(group, plan)
    command = "python benchmarks/bench.py --only scaling" + (" --quick" if plan is QUICK else "")
    (RESULTS_DIR / "scaling.md").write_text(scaling.markdown(command))
    results.notes.append(f"Scaling: {RESULTS_DIR / 'scaling.md'} (its table and sizing).")


RUNNERS = {
    "ingress": run_ingress,
    "drain": run_drain,
    "e2e": run_e2e,
    "metrics": run_metrics,
    "scaling": run_scaling,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a small run: {QUICK.drain_total:,} deliveries, "
        f"{QUICK.load_seconds} s loads (under 2 minutes)",
    )
    parser.add_argument(
        "--drain-total",
        type=int,
        metavar="N",
        help="deliveries to pre-load for the drain (e.g. 1000000 to watch the "
        "worker's memory over a million events)",
    )
    parser.add_argument(
        "--only", action="append", choices=PHASES, help="run only this phase (repeatable)"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
