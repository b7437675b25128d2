"""Reading a call's answer: the fields it must have (an ApiShapeError names the endpoint and
the field, never a value), the records it yields and whether a page follows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backfill import client as api
from backfill import plan


@dataclass(frozen=True, slots=True)
class Record:
    """A record to enqueue: its path hint (zenoti_ingest/snapshots.py) and exact bytes."""

    path_hint: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Result:
    read_at_us: int  # when Zenoti answered: the records' version
    records: list[Record] = field(default_factory=list)
    more: list[plan.Call] = field(default_factory=list)


def records(
    answer: api.Answer,
    key: str,
    id_key: str,
    hint: str,
    check: Callable[[api.Answer, Any, str], object] | None = None,
) -> list[Record]:
    """Each element of the answer's array `key` as a record, its exact bytes; each must have
    an id at `id_key` (a GUID, unless `check` says otherwise)."""
    member(answer, answer.document, key, list, "an array")
    check = check or guid
    found = []
    for value, raw in api.split_array(answer.body, answer.endpoint, key):
        check(answer, value, f"{key}[].{id_key}")
        found.append(Record(hint, raw))
    return found


def more(info: Any, page: int, rows: int) -> bool:
    """Whether a page follows: by the paging object's `total` when it has one, else by a
    full page (an empty last page may then be read)."""
    total = info.get("total") if isinstance(info, dict) else None
    if isinstance(total, int) and not isinstance(total, bool):
        return rows > 0 and page * plan.PAGE_SIZE < total
    return rows == plan.PAGE_SIZE


def member(
    answer: api.Answer, container: Any, key: str, kind: type, wanted: str, name: str = ""
) -> Any:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise api.shape_error(answer.endpoint, name or key, value, wanted)
    return value


def guid(answer: api.Answer, row: Any, name: str) -> str:
    """A GUID at `name`, written as Zenoti wrote it."""
    value = text(answer, row, name)
    try:
        uuid.UUID(value)
    except ValueError:
        raise api.shape_error(answer.endpoint, name, value, "a GUID") from None
    return value


def text(answer: api.Answer, row: Any, name: str) -> str:
    """A non-empty string id at `name` (its last part is the key in `row`)."""
    value = row.get(name.rsplit(".", 1)[-1]) if isinstance(row, dict) else None
    if not isinstance(value, str) or not value:
        raise api.shape_error(answer.endpoint, name, value, "a non-empty string")
    return value


def number_id(answer: api.Answer, row: Any, name: str) -> None:
    """An integer id (a class session's), or one written as a non-empty string."""
    value = row.get(name.rsplit(".", 1)[-1]) if isinstance(row, dict) else None
    if not (isinstance(value, int) and not isinstance(value, bool)):
        text(answer, row, name)
