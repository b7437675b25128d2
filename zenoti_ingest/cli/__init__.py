"""The `zenoti-ingest` command: the group, shared options and exit codes."""

from __future__ import annotations

import sys

import click

from zenoti_ingest import errors, logs
from zenoti_ingest import settings as settings_module

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2  # a setting is missing or malformed
EXIT_UNAVAILABLE = 3  # a service could not be reached or started
EXIT_DIFFERS = 4  # rebuild: the live tables differ from what the archive implies


class Group(click.Group):
    """Turns our typed errors into one clear line and a named exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except errors.ConfigError as exc:
            click.echo(f"zenoti-ingest: configuration error: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
        except (errors.ServiceUnavailable, errors.TransientError) as exc:
            click.echo(f"zenoti-ingest: {exc}", err=True)
            sys.exit(EXIT_UNAVAILABLE)


@click.group(cls=Group)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Zenoti webhooks into Postgres: ingress, workers, migrations."""
    # Settings passed in (main(obj=...), tests) win over the environment.
    settings = (
        ctx.obj if isinstance(ctx.obj, settings_module.Settings) else settings_module.get_settings()
    )
    logs.configure(settings)
    ctx.obj = settings


from zenoti_ingest.cli import archive as _archive  # noqa: E402  (registers the commands)
from zenoti_ingest.cli import dlq as _dlq  # noqa: E402
from zenoti_ingest.cli import run as _run  # noqa: E402

main.add_command(_run.serve)
main.add_command(_run.worker)
main.add_command(_run.migrate_command)
main.add_command(_run.run)
main.add_command(_dlq.dlq)
main.add_command(_archive.reprocess)
main.add_command(_archive.rebuild_command)
