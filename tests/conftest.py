"""Fixtures for every test: real Redis and Postgres, isolated per test (tests/fixtures/)."""

from tests.fixtures import services as suite_services
from tests.fixtures.cli import invoke  # noqa: F401
from tests.fixtures.database import pool  # noqa: F401
from tests.fixtures.processes import *  # noqa: F403
from tests.fixtures.services import *  # noqa: F403
from zenoti_ingest import logs

logs.CACHE_LOGGERS = False  # capture_logs() must see loggers first used by an earlier test


def pytest_report_header() -> list[str]:
    """Which Redis and Postgres this run uses, found or embedded: resolved here, once."""
    return suite_services.SUITE.describe()


def pytest_sessionfinish() -> None:
    """Stop the servers this run embedded (a server it found is left running)."""
    suite_services.SUITE.stop()
