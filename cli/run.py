"""serve, worker, migrate and run (everything in one process group, for a laptop)."""

from __future__ import annotations

import os
import sys

import click

from cli import launcher
from ingress import app as ingress_app
from zenoti_ingest import migrate
from zenoti_ingest.settings import Settings


@click.command()
@click.pass_obj
def serve(settings: Settings) -> None:
    """Run the ingress (granian, WSGI) on $PORT."""
    ingress_app.check_settings(settings)  # here, one line; in granian's workers, a traceback each
    launcher.check_port_free(settings)
    command = launcher.serve_command(settings)
    os.execv(command[0], command)


@click.command()
@click.pass_obj
def worker(settings: Settings) -> None:
    """Run a Celery worker that drains the deliveries stream into Postgres."""
    command = launcher.worker_command(settings)
    os.execv(command[0], command)


@click.command("migrate")
@click.pass_obj
def migrate_command(settings: Settings) -> None:
    """Create the database if missing and apply pending migrations."""
    applied = migrate.migrate(settings.database_url)
    click.echo(
        f"applied {len(applied)} migration(s)"
        + (f": {', '.join(applied)}" if applied else " (schema up to date)"),
        err=True,
    )


@click.command()
@click.option("--verbose", is_flag=True, help="Celery's and granian's own lines at info too.")
@click.pass_obj
def run(settings: Settings, verbose: bool) -> None:
    """Everything on one machine: services (embedded if none answer), schema, ingress, worker.

    One per data folder (ZENOTI_INGEST_DATA_DIR). Ctrl-C or SIGTERM stops it all; a second
    Ctrl-C stops it at once.
    """
    sys.exit(launcher.run(settings, verbose=verbose))
