"""find: every delivery concerning an id, where each one is now, and the rows it names.

"Zenoti says it sent this at 10:02; did we get it, and what did it change?" The id may be an
ingest id (from the 202), an envelope `id`, an `event_id`, or an entity's id. Current-state
rows hold guests' and staff's names: shown here on request (like `dlq show`), never logged.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cli import dlq, exits, stats
from worker.operations import lookup
from zenoti_ingest import redis_clients, stream
from zenoti_ingest.settings import Settings

REDIS_TIMEOUT_SECONDS = 5.0


def where(delivery: dict[str, Any]) -> str:
    """Where a delivery is now, in a sentence."""
    status = delivery["status"]
    if status == "processed":
        said = f"processed {dlq.when(delivery['processed_at'])}"
    elif status == "duplicate":
        said = f"duplicate of {delivery['duplicate_of'] or 'a delivery no longer processed'}"
    elif status == "dead":
        said = (
            f"dead ({delivery['failure_class']}, {delivery['attempts']} attempt(s)): "
            f"{delivery['reason']}"
        )
    elif status == "discarded":
        said = f"discarded ({delivery['failure_class']}): {delivery['discard_reason']}"
    else:
        said = status or ""
    for entry in delivery["stream"]:
        held = entry["handed_out"]
        again = "" if entry["mode"] == "live" else f"sent again ({entry['mode']}): "
        if held is None:
            said += f"; {again}waiting in the stream, not yet handed to a worker"
        else:
            said += (
                f"; {again}handed to worker {held['consumer']} {held['times_delivered']} "
                f"time(s) (last {held['idle_seconds']:.0f} s ago), not settled yet"
            )
    return said.removeprefix("; ")


def as_json(found: lookup.Found) -> dict[str, Any]:
    return {
        "id": found.id,
        "deliveries": [
            {k: dlq.jsonable(v) for k, v in {**d, "where": where(d)}.items()}
            for d in found.deliveries
        ],
        "rows": found.rows,
        "stream": found.stream,
        "pruned": [{**p, "where": pruned(p)} for p in found.pruned],
    }


def pruned(record: dict[str, Any]) -> str:
    """What remains of a delivery whose archive row expired, in a sentence."""
    seen, event = record["seen"], record["event"]
    if event is None:
        return (
            f"pruned: only its dedup record remains, seen at {dlq.when(seen['received_at'])} "
            f"(ingest id {seen['ingest_id']}); its body and event expired"
        )
    said = (
        f"pruned from the archive (ZENOTI_INGEST_ARCHIVE_DAYS): its event remains in the event "
        f"log, received {dlq.when(event['received_at'])} (ingest id {event['ingest_id']})"
    )
    return said + ("" if seen else "; no longer remembered for deduplication")


def render(found: lookup.Found) -> RenderableType:
    parts: list[RenderableType] = []
    deliveries = Table(
        title=f"Deliveries concerning {found.id}, oldest first",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    deliveries.add_column("RECEIVED", no_wrap=True)
    deliveries.add_column("INGEST ID", no_wrap=True)
    deliveries.add_column("SOURCE")
    deliveries.add_column("EVENT TYPE")
    deliveries.add_column("WHERE IT IS NOW", overflow="fold")
    for d in found.deliveries:
        deliveries.add_row(
            dlq.when(d["received_at"]),
            d["ingest_id"],
            d["source"] or "(default)",
            d["event_type"] or "(unknown)",
            where(d),
        )
    parts.append(deliveries if found.deliveries else Text("No archived delivery concerns it."))
    parts += [Text(f"{p['delivery_id']}: {pruned(p)}") for p in found.pruned]
    for r in found.rows:
        by = r["written_by"]
        parts.append(
            Text(
                f"\n{r['table']} {r['row'][r['key']]}: last written by {by['ingest_id']} "
                f"({by['event_type']}, event at {by['event_at'] or 'unknown'}, received "
                f"{_moment(by['received_at'])})"
            )
        )
        row = Table(box=None, show_header=False, pad_edge=False)
        row.add_column(style="bold")
        row.add_column(overflow="fold")
        for column, value in r["row"].items():
            if value is not None:
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                row.add_row(column, shown)
        parts.append(row)
    scanned = found.stream
    if "unreachable" in scanned:
        parts.append(Text(f"The stream was not searched: {scanned['unreachable']}", style="red"))
    elif not scanned["complete"]:
        parts.append(
            Text(
                f"Searched the oldest {scanned['scanned']} of {scanned['length']} stream entries "
                "(and those around the time of an ingest id): a delivery further along is not "
                "shown (--scan-limit)."
            )
        )
    return Group(*parts)


def _moment(text: str | None) -> str:
    return dlq.when(datetime.fromisoformat(text)) if text else "unknown"


@click.command()
@click.argument("wanted", metavar="ID")
@click.option("--json", "json_output", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--scan-limit",
    type=click.IntRange(min=0),
    default=lookup.SCAN_LIMIT,
    show_default=True,
    help="Stream entries searched, from the oldest (deliveries not archived yet).",
)
@click.pass_obj
def find(settings: Settings, wanted: str, json_output: bool, scan_limit: int) -> None:
    """Every delivery concerning ID, oldest first, and where each is now (waiting in the
    stream, handed to a worker, processed, a duplicate, dead); for an entity, or what a
    delivery wrote, the current-state rows and the event that wrote them last.

    ID: an ingest id (from the 202), an envelope `id`, an `event_id`, or the id of an
    appointment, appointment group, invoice, guest, employee, class session or booking,
    membership or package. Prints names where the rows hold them. Exits 1 if nothing
    concerns it."""
    wanted = wanted.strip()
    client = redis_clients.for_worker(settings, REDIS_TIMEOUT_SECONDS)
    try:
        with dlq.connect(settings) as conn:
            found = lookup.find(conn, client, stream.Keys.of(settings), wanted, scan_limit)
    finally:
        client.close()
    if json_output:
        click.echo(json.dumps(as_json(found), indent=2, ensure_ascii=False, default=str))
    elif found.deliveries or found.rows or found.pruned:
        stats.console().print(render(found))
    if "unreachable" in found.stream:
        click.echo(f"zenoti-ingest: {found.stream['unreachable']}; stream not searched", err=True)
        sys.exit(exits.UNAVAILABLE)
    if not found.deliveries and not found.rows and not found.pruned:
        scanned = found.stream
        partly = (
            ""
            if scanned["complete"]
            else f" (searched the oldest {scanned['scanned']} of {scanned['length']} stream "
            "entries: --scan-limit)"
        )
        click.echo(f"Nothing found for {wanted}{partly}.", err=True)
        sys.exit(exits.FAILED)
