"""Every SQL statement, by name, loaded once from queries.sql; migrations live beside it."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

MIGRATIONS_DIR = Path(str(resources.files(__name__) / "migrations"))

_HEADER = re.compile(r"^-- (\w+) --$", re.MULTILINE)


def _load(text: str) -> dict[str, str]:
    """Split queries.sql at its `-- name --` headers into {name: statement}."""
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _with_filters(found: dict[str, str]) -> dict[str, str]:
    """Queries that filter deliveries say `{filters}`: the one `delivery_filters` fragment."""
    return {name: q.replace("{filters}", found["delivery_filters"]) for name, q in found.items()}


queries: dict[str, str] = _with_filters(
    _load((resources.files(__name__) / "queries.sql").read_text())
)
