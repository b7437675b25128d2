"""Correctness after a drain: nothing lost, redeliveries counted as duplicates, poison dead, and
the appointments table equal to the state computed in Python from the events in order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import stores
from payloads import DataSet


@dataclass(frozen=True)
class Appointments:
    rows: int
    expected: int
    mismatched: int  # wrong state, missing, or not expected at all

    @property
    def ok(self) -> bool:
        return self.mismatched == 0 and self.rows == self.expected

    def describe(self) -> str:
        return f"{self.rows:,} rows for {self.expected:,} expected, {self.mismatched} wrong"


@dataclass(frozen=True)
class Archive:
    lost: int  # pre-loaded deliveries without a webhook_events row
    statuses: Counter
    expected: Counter  # processed: originals, duplicate: redeliveries, dead: poison

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.statuses == self.expected

    def describe(self) -> str:
        found = ", ".join(
            f"{status} {self.statuses[status]:,}/{n:,}" for status, n in self.expected.items()
        )
        return f"lost {self.lost}; {found} (found/expected)"


def appointments(url: str, dataset: DataSet) -> Appointments:
    expected = dataset.expected_state()
    actual = {
        appointment_id: (status, progress, last_event_at)
        for appointment_id, status, progress, last_event_at in stores.query(
            url, "SELECT appointment_id::text, status, progress, last_event_at FROM appointments"
        )
    }
    wrong = sum(1 for key, state in expected.items() if actual.get(key) != state)
    unexpected = len(actual.keys() - expected.keys())
    return Appointments(len(actual), len(expected), wrong + unexpected)


def archive(url: str, dataset: DataSet) -> Archive:
    rows = dict(stores.query(url, "SELECT ingest_id::text, status FROM webhook_events"))
    lost = sum(1 for item in dataset.items if item.delivery.ingest_id not in rows)
    expected = Counter(
        processed=dataset.count("original"),
        duplicate=dataset.count("redelivery"),
        dead=dataset.count("poison"),
    )
    return Archive(lost, Counter(rows.values()), expected)
