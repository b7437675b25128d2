"""The ingress→worker message: one accepted delivery, and the drain task's name.

The ingress appends each delivery to a Redis stream with a single XADD; Celery drain tasks
claim entries in batches through a consumer group. The entry holds the exact raw body, so the
worker (never the ingress) judges its content.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import uuid_utils

# Celery task names; ingress and CLI refer to tasks by name only, never by import.
DRAIN_TASK = "zenoti_ingest.drain"

# A Zenoti event type name: dotted CamelCase words (Invoice.Closed, Class.Booking.NoShow).
# Bounded, so that a name always fits the indexes it is stored in.
EVENT_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}(?:\.[A-Za-z][A-Za-z0-9_]{0,39}){0,5}")

# How a worker treats a delivery: as it comes (live), a dead letter sent again (replay), or an
# archived delivery projected again after a schema or mapping change (reprocess).
LIVE, REPLAY, REPROCESS = "", "replay", "reprocess"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request we accepted, as the ingress saw it."""

    ingest_id: str
    received_at_us: int  # microseconds since the epoch, UTC
    path_hint: str  # the event type named by the URL, or "" when the URL names none
    body: bytes
    source: str = ""  # the named source (/webhooks/zenoti/@<source>/...), "" for the default
    mode: str = LIVE

    @classmethod
    def accept(cls, body: bytes, path_hint: str, source: str = "") -> Delivery:
        """Stamp a new delivery with a time-ordered ingest id and the receive time."""
        return cls(
            ingest_id=str(uuid_utils.uuid7()),
            received_at_us=time.time_ns() // 1000,
            path_hint=path_hint,
            body=body,
            source=source,
        )
