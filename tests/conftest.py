"""Fixtures for every test: real Redis and Postgres, isolated per test (tests/fixtures/)."""

from tests.fixtures.cli import invoke  # noqa: F401
from tests.fixtures.database import pool  # noqa: F401
from tests.fixtures.processes import *  # noqa: F403
from tests.fixtures.services import *  # noqa: F403
