"""reprocess (archived deliveries projected again) and rebuild (current state from the archive)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from cli import dlq, exits
from worker.operations import deadletters, rebuild
from worker.pipeline import handlers
from zenoti_ingest.settings import Settings


@click.command()
@click.argument("ingest_ids", nargs=-1, type=dlq.INGEST_ID)
@dlq.filter_options(dead=False)
@click.option(
    "--all", "everything", is_flag=True, help="Reprocess every processed delivery (no filter)."
)
@click.option("--dry-run", is_flag=True, help="Say what would be reprocessed; change nothing.")
@click.pass_obj
def reprocess(
    settings: Settings, ingest_ids: tuple[str, ...], everything: bool, dry_run: bool, **given: Any
) -> None:
    """Project processed deliveries again after a schema or mapping change (also those of an
    event type that had no handler when they came), through the same stream and task as live
    traffic. Their archive rows stay; an older event never overwrites newer state.

    Give ingest ids, filters, or --all. Prints the ingest ids sent, one per line.
    """
    dlq.send_again(
        settings,
        dlq.make_filters(ingest_ids, **given),
        everything,
        dry_run,
        deadletters.PROCESSED,
        "reprocess",
    )


@click.command("rebuild")
@click.option(
    "--table",
    "tables",
    multiple=True,
    type=click.Choice(sorted(handlers.TABLES)),
    help="Report only this table (repeatable; every table is rebuilt regardless).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Differing keys listed per table and kind of difference.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
def rebuild_command(settings: Settings, tables: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Recompute the current-state tables from the archive alone, in a transaction that is
    rolled back, and report every row that differs from the live one. Changes nothing.

    Exits 4 when a row differs (missing: the archive implies it, the live table lacks it;
    extra: the other way round; different: which columns).
    """
    with dlq.connect(settings) as conn:
        total = rebuild.count_processed(conn)
        with dlq.progress(total, "Rebuilding") as advance:
            report = rebuild.rebuild(conn, tables, limit, advance)
    if as_json:
        click.echo(json.dumps(_as_dict(report), indent=2))
    else:
        _print(report)
    if report.not_projected:
        click.echo(
            f"{len(report.not_projected)} processed deliveries no longer pass today's "
            "schemas (see not_projected in --json).",
            err=True,
        )
    if report.pruned_before is not None:
        click.echo(
            f"The archive starts at {dlq.when(report.pruned_before)}: older deliveries expired "
            "(ZENOTI_INGEST_ARCHIVE_DAYS), so rows only they wrote show as extra, and columns "
            "they wrote last as different.",
            err=True,
        )
    if report.differs:
        click.echo(
            "The live tables differ from the archive; `zenoti-ingest reprocess` projects "
            "archived deliveries again.",
            err=True,
        )
        sys.exit(exits.DIFFERS)
    click.echo(
        f"The live tables match the archive ({report.deliveries} processed deliveries).", err=True
    )


def _print(report: rebuild.Report) -> None:
    click.echo(
        dlq.table(
            ("TABLE", "REBUILT", "LIVE", "MISSING", "EXTRA", "DIFFERENT"),
            [(t.table, t.rebuilt, t.live, t.missing, t.extra, t.different) for t in report.tables],
        )
    )
    rows = [(t.table, "missing", key, "") for t in report.tables for key in t.missing_keys]
    rows += [(t.table, "extra", key, "") for t in report.tables for key in t.extra_keys]
    rows += [
        (t.table, "different", d.key, ", ".join(d.columns))
        for t in report.tables
        for d in t.different_rows
    ]
    if rows:
        click.echo()
        click.echo(dlq.table(("TABLE", "DIFFERENCE", "KEY", "COLUMNS"), rows))


def _as_dict(report: rebuild.Report) -> dict[str, Any]:
    return {
        "deliveries": report.deliveries,
        "not_projected": list(report.not_projected),
        "archive_pruned_before": dlq.when(report.pruned_before) or None,
        "differs": report.differs,
        "tables": [
            {
                "table": t.table,
                "key": t.key,
                "rebuilt": t.rebuilt,
                "live": t.live,
                "missing": {"count": t.missing, "keys": list(t.missing_keys)},
                "extra": {"count": t.extra, "keys": list(t.extra_keys)},
                "different": {
                    "count": t.different,
                    "rows": [{"key": d.key, "columns": list(d.columns)} for d in t.different_rows],
                },
            }
            for t in report.tables
        ],
    }
