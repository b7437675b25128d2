"""The `zenoti-ingest` command group; it turns our typed errors into one line and an exit code."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli import (
    archive,
    backfill,
    dlq,
    exits,
    find,
    metrics,
    prune,
    run,
    run_state,
    stats,
    tools,
)
from zenoti_ingest import errors, logs
from zenoti_ingest import settings as settings_module


class Group(click.Group):
    """Turns our typed errors into one clear line and a named exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = exits.USAGE
            raise

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's options, parsed in here
            exc.exit_code = exits.USAGE
            raise
        except errors.ConfigError as exc:
            click.echo(f"zenoti-ingest: configuration error: {exc}", err=True)
            sys.exit(exits.CONFIG)
        except run_state.AlreadyRunning as exc:
            click.echo(f"zenoti-ingest: {exc}", err=True)
            sys.exit(exits.FAILED)
        except (errors.ServiceUnavailable, errors.TransientError) as exc:
            click.echo(f"zenoti-ingest: {exc}", err=True)
            sys.exit(exits.UNAVAILABLE)


@click.group(cls=Group)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Zenoti webhooks into Postgres: ingress, workers, migrations."""
    # Settings passed in (main(obj=...), tests) win over the environment.
    settings = (
        ctx.obj if isinstance(ctx.obj, settings_module.Settings) else settings_module.get_settings()
    )
    logs.configure(settings)
    if ctx.invoked_subcommand != "run":
        settings, running = run_state.adopt(settings)
        if running is not None:
            click.echo(
                f"zenoti-ingest: using the servers of the `run` in {settings.data_dir}/"
                f" (pid {running.pid})",
                err=True,
            )
    ctx.obj = settings


for command in (
    run.serve,
    run.worker,
    run.migrate_command,
    run.run,
    dlq.dlq,
    archive.reprocess,
    archive.rebuild_command,
    tools.psql,
    tools.redis_cli,
    tools.demo,
    stats.stats,
    find.find,
    metrics.metrics_command,
    prune.prune,
    backfill.backfill,
):
    main.add_command(command)
