"""backfill: recover from Zenoti's REST API what the webhooks never delivered; `status`."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from backfill import checkpoints, plan, rate
from backfill import run as runner
from cli import dlq, exits
from zenoti_ingest import errors
from zenoti_ingest.settings import Settings

# Zenoti selects by centre-local date; our times are UTC. Local time is UTC-12 to UTC+14: the
# outage's first local date is at most that of --since - 12 h, its last that of --until + 14 h.
BEHIND, AHEAD = timedelta(hours=12), timedelta(hours=14)


class CenterId(click.ParamType):
    name = "CENTER_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            self.fail(f"{value!r} is not a center id (a GUID)", param, ctx)


def _resources(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(r.strip() for r in value.split(",") if r.strip()))
    unknown = [r for r in chosen if r not in plan.RESOURCES]
    if unknown or not chosen:
        raise click.BadParameter(
            f"choose from {', '.join(plan.RESOURCES)} (not covered: class bookings; see the README)"
        )
    return chosen


@click.group(invoke_without_command=True)
@click.option("--since", type=dlq.IsoTime(), help="start of the outage (ISO date or time, UTC)")
@click.option("--until", type=dlq.IsoTime(), help="end of the outage (default: now)")
@click.option("--center", "centers", multiple=True, type=CenterId(), help="only this center")
@click.option("--source", default="", help="the named source (default: the default source)")
@click.option(
    "--resources",
    default=",".join(plan.DEFAULT_RESOURCES),
    callback=_resources,
    show_default=True,
    help=f"comma-separated, of {', '.join(plan.RESOURCES)}",
)
@click.option(
    "--horizon-days",
    default=90,
    show_default=True,
    type=click.IntRange(0, 366),
    help="appointments this far past --until too (bookings made during the outage)",
)
@click.option(
    "--reread-closed",
    is_flag=True,
    help="read again invoices stored closed already (by default their details are skipped)",
)
@click.option("--dry-run", is_flag=True, help="print the plan and its cost; call nothing")
@click.option("--json", "as_json", is_flag=True, help="the summary as JSON")
@click.pass_context
def backfill(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    centers: tuple[str, ...],
    source: str,
    resources: tuple[str, ...],
    horizon_days: int,
    reread_closed: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Read what Zenoti holds for a window and feed it through the pipeline as deliveries.

    Checkpointed: started again with the same arguments, a run resumes where it stopped.
    """
    if ctx.invoked_subcommand is not None:
        return
    if since is None:
        raise click.UsageError("--since is required (the start of the outage)")
    until = until or datetime.now(UTC)
    if until < since:
        raise click.UsageError("--until is before --since")
    request = plan.Request(
        source=source,
        since=(since.astimezone(UTC) - BEHIND).date(),
        until=(until.astimezone(UTC) + AHEAD).date(),
        resources=resources,
        centers=centers,
        horizon_days=horizon_days,
        reread_closed=reread_closed,
    )
    settings: Settings = ctx.obj
    if dry_run:
        _dry_run(settings, request, as_json)
        return
    try:
        summary = runner.run(settings, request, report=_report)
    except errors.BackfillRunning as exc:
        click.echo(f"zenoti-ingest: {exc}", err=True)
        sys.exit(exits.FAILED)
    except errors.ApiFailed as exc:  # listing the centers failed: nothing could be planned
        click.echo(f"zenoti-ingest: backfill stopped: {exc}", err=True)
        sys.exit(exits.FAILED)
    click.echo("", err=True)
    _print_summary(summary, as_json)
    if summary.status != runner.DONE:
        sys.exit(exits.FAILED)


# Calls that answers add, which no dry run can count.
_FOUND_LATER = {
    plan.INVOICES: "1 call per invoice the sales reports list (not stored closed yet), 1 per"
    " further report page",
    plan.EMPLOYEES: "1 per further 100 employees",
    plan.GUESTS: "1 per further 100 guests updated",
    plan.MEMBERSHIPS: "1 per further 100 members",
    plan.CLASSES: "1 per further 100 class sessions of a window",
    plan.PACKAGES: "1 call per guest the sales reports show buying a package",
}


def _dry_run(settings: Settings, request: plan.Request, as_json: bool) -> None:
    """The calls known before any answer, per resource, and their time at the pace. Without
    --center the centers are not known without a call: the plan is given per center."""
    centers = list(request.centers) or ["<each center>"]
    calls: dict[str, int] = {}
    for call in plan.plan(request, centers):
        calls[call.resource] = calls.get(call.resource, 0) + 1
    per = settings.api_calls_per_minute
    window = settings.api_rate_window_seconds * rate.MARGIN
    known = sum(calls.values())
    report = {
        "source": request.source,
        "since": request.since.isoformat(),
        "until": request.until.isoformat(),
        "horizon_until": (request.until + timedelta(days=request.horizon_days)).isoformat(),
        "centers": list(request.centers) or "every center (1 call to list them)",
        "calls": calls,
        "calls_per_center": not request.centers,
        "plus": "; ".join(
            text for resource, text in _FOUND_LATER.items() if resource in request.resources
        ),
        "calls_per_minute": per,
        "seconds": round(plan.seconds_for(known, window, per), 1),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    scope = "per center" if report["calls_per_center"] else f"for {len(centers)} center(s)"
    click.echo(
        f"Backfill {report['since']} .. {report['until']} (appointments to "
        f"{report['horizon_until']}), {scope}:"
    )
    for resource, count in calls.items():
        click.echo(f"  {resource:<13} {count} calls")
    if report["plus"]:
        click.echo(f"  plus {report['plus']}")
    click.echo(
        f"{known} calls known now: {_duration(report['seconds'])} at {per} calls per "
        f"{settings.api_rate_window_seconds:g} s (dry run: nothing called)."
    )


def _report(progress: runner.Progress) -> None:
    click.echo(
        f"\r{progress.calls_done}/{progress.calls_planned} calls · {progress.records_found} "
        f"records, {progress.records_new} new or changed · ETA "
        f"{_duration(progress.eta_seconds)}   ",
        nl=False,
        err=True,
    )


def _print_summary(summary: runner.Summary, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": summary.run_id,
                    "status": summary.status,
                    "calls_made": summary.calls_made,
                    "calls": {r: {"done": d, "planned": p} for r, (d, p) in summary.calls.items()},
                    "records_found": summary.records_found,
                    "records_new": summary.records_new,
                    "stopped": summary.stopped,
                    "seconds": round(summary.seconds, 1),
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"Run {summary.run_id}: {summary.status}. {summary.calls_made} calls made, "
        f"{summary.records_found} records read, {summary.records_new} new or changed, in "
        f"{_duration(summary.seconds)}."
    )
    for resource, (done, planned) in summary.calls.items():
        click.echo(f"  {resource:<13} {done}/{planned} calls done")
    for resource, why in summary.stopped.items():
        click.echo(f"  {resource} stopped: {why}")
    if summary.stopped:
        click.echo("Run the same command again to resume.")


@backfill.command()
@click.option("--source", default=None, help="only this source's runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(settings: Settings, source: str | None, limit: int, as_json: bool) -> None:
    """Backfill runs, newest first, and their progress."""
    with dlq.connect(settings) as conn:
        runs = checkpoints.runs(conn, source, limit)
    if as_json:
        click.echo(json.dumps([checkpoints.jsonable(r) for r in runs], indent=2))
        return
    if not runs:
        click.echo("No backfill runs.", err=True)
        return
    rows = [
        (
            r.run_id,
            r.source or "(default)",
            r.status,
            f"{r.since} .. {r.until} +{r.horizon_days}d",
            ",".join(r.resources),
            "all" if r.centers is None else r.centers,
            f"{r.calls_done}/{r.calls_planned}",
            f"{r.records_found} ({r.records_new} new)",
            dlq.when(r.updated_at),
            dlq.short(r.error),
        )
        for r in runs
    ]
    headers = (
        "run",
        "source",
        "status",
        "window",
        "resources",
        "centers",
        "calls",
        "records",
        "updated",
        "error",
    )
    click.echo(dlq.table(headers, rows))


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
