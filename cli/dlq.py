"""dlq list, show, replay and discard: dead letters are webhook_events rows with status 'dead'."""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import psycopg

from cli import exits
from worker.operations import deadletters
from zenoti_ingest import db, redis_clients, stream
from zenoti_ingest.settings import Settings

REASON_WIDTH = 60  # the table truncates reasons to this; --json and `show` have them whole
PROGRESS_FROM = 100  # deliveries; fewer get no progress bar


class IsoTime(click.ParamType):
    """An ISO 8601 date or date and time; without a zone, UTC."""

    name = "ISO-TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO date or time (2024-05-01, 2024-05-01T09:30)", param, ctx
            )
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class IngestId(click.ParamType):
    name = "INGEST_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            self.fail(f"{value!r} is not an ingest id (a UUID)", param, ctx)


INGEST_ID = IngestId()


def filter_options(dead: bool = True) -> Callable:
    """The filters `list`, `replay` (and, without the failure ones, `reprocess`) share."""
    options = [
        click.option(
            "--event-type", "event_types", multiple=True, help="Only this event type (repeatable)."
        ),
        click.option("--since", type=IsoTime(), help="Received at or after (UTC unless zoned)."),
        click.option("--until", type=IsoTime(), help="Received before (exclusive)."),
        click.option("--source", help='Only this named source ("" for the default one).'),
    ]
    if dead:
        options += [
            click.option(
                "--failure-class",
                "failure_classes",
                multiple=True,
                help="parse, schema, unknown_event_type, database, retries_exhausted"
                " ... (repeatable).",
            ),
            click.option("--reason-contains", help="Text in the reason (case-insensitive)."),
        ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def make_filters(ingest_ids: Sequence[str] = (), **given: Any) -> deadletters.Filters:
    return deadletters.Filters(
        ingest_ids=tuple(ingest_ids),
        **{k: tuple(v) if isinstance(v, list | tuple) else v for k, v in given.items()},
    )


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[psycopg.Connection]:
    with db.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for large jobs; `advance(n)` moves it."""
    if total < PROGRESS_FROM:
        yield lambda _: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *cells]
    )


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else ""


def jsonable(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def short(text: str | None, width: int = REASON_WIDTH) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group()
def dlq() -> None:
    """Dead letters: deliveries that could not be applied, kept with their exact bytes."""


@dlq.command("list")
@filter_options(dead=True)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (oldest first).")
@click.option("--summary", is_flag=True, help="Counts per failure class and event type.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
def list_command(
    settings: Settings, limit: int | None, summary: bool, as_json: bool, **given: Any
) -> None:
    """Dead letters (never their bodies: see `dlq show`)."""
    filters = make_filters(**given)
    with connect(settings) as conn:
        if summary:
            return _print_summary(deadletters.summarize_dead(conn, filters), as_json)
        letters = deadletters.list_dead(conn, filters, limit)
    if as_json:
        click.echo(
            json.dumps(
                [{k: jsonable(getattr(d, k)) for k in d.__slots__} for d in letters], indent=2
            )
        )
        return
    click.echo(
        table(
            ("INGEST ID", "RECEIVED", "EVENT TYPE", "CLASS", "ATTEMPTS", "LAST FAILURE", "REASON"),
            [
                (
                    d.ingest_id,
                    when(d.received_at),
                    d.event_type or "(unknown)",
                    d.failure_class,
                    d.attempts,
                    when(d.last_failed_at),
                    short(d.reason),
                )
                for d in letters
            ],
        )
    )
    click.echo(f"{len(letters)} dead letter(s)", err=True)


def _print_summary(counts: list[tuple[str | None, str | None, int]], as_json: bool) -> None:
    per_class: dict[str | None, int] = {}
    per_type: dict[str | None, int] = {}
    for failure_class, event_type, count in counts:
        per_class[failure_class] = per_class.get(failure_class, 0) + count
        per_type[event_type] = per_type.get(event_type, 0) + count
    total = sum(per_class.values())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "total": total,
                    "failure_classes": per_class,
                    "event_types": {str(k) if k else "": v for k, v in per_type.items()},
                    "breakdown": [
                        {"failure_class": c, "event_type": t, "count": n} for c, t, n in counts
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(table(("FAILURE CLASS", "COUNT"), [*per_class.items(), ("total", total)]))
    click.echo()
    click.echo(
        table(
            ("FAILURE CLASS", "EVENT TYPE", "COUNT"),
            [(c, t or "(unknown)", n) for c, t, n in counts],
        )
    )


@dlq.command()
@click.argument("ingest_id", type=INGEST_ID)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_obj
def show(settings: Settings, ingest_id: str, as_json: bool) -> None:
    """One delivery's whole record and body (personal data: shown only here, on request)."""
    with connect(settings) as conn:
        record = deadletters.show_delivery(conn, ingest_id)
    if record is None:
        click.echo(not_archived(ingest_id, settings.archive_days), err=True)
        sys.exit(exits.FAILED)
    fields = {k: jsonable(getattr(record, k)) for k in record.__slots__ if k != "body"}
    kind, shown = render_body(record.body)
    if as_json:
        document = json.loads(record.body) if kind == "JSON" else None
        click.echo(
            json.dumps(
                {
                    **fields,
                    "body_bytes": len(record.body),
                    "body_json": document,
                    "body_base64": base64.b64encode(record.body).decode(),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    fields["source"] = record.source or "(default)"
    width = max(len(k) for k in fields)
    for name, value in fields.items():
        click.echo(f"{name.replace('_', ' '):<{width}}  {'' if value is None else value}")
    click.echo(f"{'body':<{width}}  {len(record.body)} bytes, {kind}")
    click.echo(shown)


def render_body(body: bytes) -> tuple[str, str]:
    """(what it is, how to print it safely): JSON pretty-printed, plain text as it is, anything
    else (not UTF-8, control characters) as a Python bytes literal."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return "not UTF-8 text", repr(body)
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        pass
    else:
        if all(c.isprintable() or c == "\n" for c in pretty):
            return "JSON", pretty
        return "JSON", json.dumps(json.loads(text), indent=2)  # escape what a terminal obeys
    if all(c.isprintable() or c in "\n\t\r" for c in text):
        return "text, not JSON", text
    return "text with control characters", repr(body)


@dlq.command()
@click.argument("ingest_ids", nargs=-1, type=INGEST_ID)
@filter_options(dead=True)
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter (no filter).")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@click.pass_obj
def replay(
    settings: Settings, ingest_ids: tuple[str, ...], everything: bool, dry_run: bool, **given: Any
) -> None:
    """Send dead letters through the stream again, to the same task as live traffic.

    Give ingest ids, filters (as `list`), or --all. Replaying twice applies a delivery once.
    """
    send_again(
        settings, make_filters(ingest_ids, **given), everything, dry_run, deadletters.DEAD, "replay"
    )


def send_again(
    settings: Settings,
    filters: deadletters.Filters,
    everything: bool,
    dry_run: bool,
    status: str,
    verb: str,
) -> None:
    """replay (dead letters) and reprocess (processed deliveries): select, then publish.
    Prints the ingest ids (sent, or that would be) on stdout, one per line."""
    if not filters.any() and not everything:
        raise click.UsageError(f"name ingest ids or filters, or pass --all to {verb} every one")
    with connect(settings) as conn:
        for ingest_id, found in known_statuses(
            conn, filters.ingest_ids, settings.archive_days
        ).items():
            if found != status:
                click.echo(f"{ingest_id}: {found}, not {status}; skipped", err=True)
        ids = deadletters.select_archived(conn, status, filters)
        if not ids:
            click.echo(f"Nothing to {verb}.", err=True)
            return
        if dry_run:
            click.echo("\n".join(ids))
            click.echo(f"Would {verb} {len(ids)} deliveries (dry run: nothing sent).", err=True)
            return
        send = deadletters.replay if verb == "replay" else deadletters.reprocess
        with progress(len(ids), f"{verb.capitalize()}ing") as advance:
            sent = send(
                conn, stream.Producer(redis_clients.for_enqueue(settings), settings), ids, advance
            )
    if sent:
        click.echo("\n".join(sent))
    gone = f"; {len(ids) - len(sent)} changed status meanwhile" if len(sent) < len(ids) else ""
    click.echo(
        f"Sent {len(sent)} deliveries to {verb} to the stream{gone}; a worker applies them.",
        err=True,
    )


def not_archived(ingest_id: str, archive_days: int) -> str:
    """Why an ingest id is not in the archive: never there (a typo?), or expired; a UUIDv7
    ingest id (what the ingress stamps) says when it was received."""
    as_uuid = uuid.UUID(ingest_id)
    if as_uuid.version == 7:
        issued = datetime.fromtimestamp((as_uuid.int >> 80) / 1000, UTC)
        if issued < datetime.now(UTC) - timedelta(days=archive_days):
            return (
                f"{ingest_id}: pruned: received {when(issued)}, more than {archive_days} days "
                "ago (ZENOTI_INGEST_ARCHIVE_DAYS); `zenoti-ingest find` shows what remains"
            )
    return f"{ingest_id}: no such delivery"


def known_statuses(
    conn: psycopg.Connection, ingest_ids: Sequence[str], archive_days: int
) -> dict[str, str]:
    """{id: status} of the ids given; an unknown id (a typo?) ends the command, nothing done."""
    if not ingest_ids:
        return {}
    statuses = deadletters.delivery_statuses(conn, ingest_ids)
    unknown = [i for i in dict.fromkeys(ingest_ids) if i not in statuses]
    if unknown:
        for ingest_id in unknown:
            click.echo(not_archived(ingest_id, archive_days), err=True)
        click.echo("Nothing changed.", err=True)
        sys.exit(exits.FAILED)
    return {i: statuses[i] for i in dict.fromkeys(ingest_ids)}


@dlq.command()
@click.argument("ingest_ids", nargs=-1, required=True, type=INGEST_ID)
@click.option("--reason", required=True, help="Why nobody will replay them (kept with them).")
@click.option("--dry-run", is_flag=True, help="Say what would be discarded; change nothing.")
@click.pass_obj
def discard(settings: Settings, ingest_ids: tuple[str, ...], reason: str, dry_run: bool) -> None:
    """Mark dead letters discarded, with a reason; they are kept ZENOTI_INGEST_ARCHIVE_DAYS
    more, then expire with the archive."""
    if not reason.strip():
        raise click.BadParameter("must say something", param_hint="--reason")
    with connect(settings) as conn:
        statuses = known_statuses(conn, ingest_ids, settings.archive_days)
        wrong = {
            i: found
            for i, found in statuses.items()
            if found not in (deadletters.DEAD, deadletters.DISCARDED)
        }
        for ingest_id, found in wrong.items():
            click.echo(f"{ingest_id}: {found}, not a dead letter", err=True)
        if wrong:
            click.echo("Nothing changed.", err=True)
            sys.exit(exits.FAILED)
        for ingest_id in (i for i, found in statuses.items() if found == deadletters.DISCARDED):
            click.echo(f"{ingest_id}: already discarded", err=True)
        dead = [i for i, found in statuses.items() if found == deadletters.DEAD]
        if not dead:
            click.echo("Nothing to discard.", err=True)
            return
        if dry_run:
            click.echo("\n".join(dead))
            click.echo(
                f"Would discard {len(dead)} dead letter(s) (dry run: nothing changed).", err=True
            )
            return
        discarded = deadletters.discard(conn, dead, reason)
    click.echo("\n".join(discarded))
    click.echo(f"Discarded {len(discarded)} dead letter(s).", err=True)
