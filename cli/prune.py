"""prune: expire what the retention settings say has expired, now (workers also do it alone)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from cli import dlq
from zenoti_ingest import storage
from zenoti_ingest.settings import Settings


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would go (partitions, rows, bytes).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
def prune(settings: Settings, dry_run: bool, as_json: bool) -> None:
    """Drop the weekly partitions of the archive (ZENOTI_INGEST_ARCHIVE_DAYS) and of the event
    log (ZENOTI_INGEST_EVENT_LOG_DAYS; 0 keeps it) that are past their retention, and forget
    delivery ids older than ZENOTI_INGEST_DEDUP_DAYS. Dead letters are kept while dead.

    Every worker does the same on its own every ZENOTI_INGEST_STORAGE_CHECK_SECONDS; this is
    for a person who wants it now. Partitions for the coming weeks are created first.
    """
    now = datetime.now(UTC)
    with dlq.connect(settings) as conn:
        if dry_run:
            work = storage.plan(conn, settings, now)
        else:
            storage.ensure_partitions(conn, now)
            work = storage.prune(conn, settings, now, lambda line: click.echo(line, err=True))
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "expired": [_as_dict(w) for w in work]}))
        return
    if not work:
        click.echo("Nothing has expired.")
        return
    rows = [
        (w.table, w.kind, w.name, f"{w.rows:,}", f"{w.kept:,}", storage.size_text(w.bytes))
        for w in work
    ]
    click.echo(dlq.table(("table", "what", "name", "rows", "kept", "bytes"), rows))
    total = storage.size_text(sum(w.bytes for w in work))
    click.echo(f"{'Would free' if dry_run else 'Freed'} about {total}.")


def _as_dict(item: storage.Expiry) -> dict:
    return {
        "table": item.table,
        "kind": item.kind,
        "name": item.name,
        "rows": item.rows,
        "kept": item.kept,
        "bytes": item.bytes,
        "until": dlq.when(item.upper),
    }
