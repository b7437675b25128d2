"""Webhook bodies built from Zenoti's Appointment Started sample page, and the drain data set.

The page (data/appointment-started-page.txt, copied verbatim from shared/zenoti) prints the
bare `data` object with a missing quote; it is repaired here and wrapped in the documented
envelope. The page as printed, unrepaired, is the poison message.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from zenoti_ingest import contract

PAGE = Path(__file__).resolve().parent / "data" / "appointment-started-page.txt"
STARTED, COMPLETED = "Appointment.Started", "Appointment.Completed"
PROGRESS = {STARTED: 1, COMPLETED: 2}
STATUS = {STARTED: "started", COMPLETED: "completed"}
NUMBER = b"@@NUMBER@@"  # placeholder in a numbered body: 12 digits once filled (post.lua too)
_REPAIR = ('"equipment_id: ""', '"equipment_id": ""')
_EPOCH = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def printed_sample() -> str:
    """The sample body exactly as the page prints it (not valid JSON)."""
    lines = PAGE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
    return "\n".join(lines[start : end + 1])


def sample_data() -> dict:
    """The page's `data` object, repaired."""
    return json.loads(printed_sample().replace(*_REPAIR))


def zenoti_timestamp(when: datetime) -> str:
    """UTC with 7 fractional digits, the .NET way Zenoti writes event_timestamp."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def envelope(event_type: str, data: dict, delivery_id: str, at: datetime) -> bytes:
    return json.dumps(
        {
            "id": delivery_id,
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, delivery_id)),
            "event_schema": "v1",
            "event_resource": "Appointment",
            "event_type": event_type,
            "event_timestamp": zenoti_timestamp(at),
            "data": data,
        }
    ).encode()


def with_appointment(data: dict, appointment_id: str, event_type: str) -> dict:
    """The sample's data for another appointment, at the progress of `event_type`."""
    first = {
        **data["appointments"][0],
        "id": appointment_id,
        "appointment_progress": PROGRESS[event_type],
    }
    return {**data, "appointments": [first]}


def started_body() -> bytes:
    """The Appointment.Started body every ingress request posts."""
    return envelope(STARTED, sample_data(), str(uuid.uuid4()), _EPOCH)


@dataclass(frozen=True)
class Numbering:
    """Started bodies with unique delivery and appointment ids: a prefix each, then a number."""

    delivery_prefix: str
    appointment_prefix: str  # plus 12 digits, a valid GUID

    def template(self) -> bytes:
        """The body with NUMBER where the number goes (twice)."""
        suffix = NUMBER.decode()
        data = with_appointment(sample_data(), self.appointment_prefix + suffix, STARTED)
        return envelope(STARTED, data, self.delivery_prefix + suffix, _EPOCH)

    def delivery_id(self, number: int) -> str:
        return f"{self.delivery_prefix}{number:012d}"

    def patterns(self) -> dict[str, str]:
        """SQL LIKE patterns: {"deliveries": ..., "appointments": ...}."""
        return {
            "deliveries": self.delivery_prefix + "%",
            "appointments": self.appointment_prefix + "%",
        }


STEADY = Numbering("e2e-", "00000000-0000-4000-8000-")  # the steady-rate run
SUSTAINED = Numbering("max-", "00000000-0000-4000-9000-")  # the sustained-maximum run


def numbered_body(template: bytes, number: int) -> bytes:
    return template.replace(NUMBER, b"%012d" % number)


@dataclass(frozen=True, slots=True)
class Event:
    appointment_id: str
    event_type: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Item:
    """One pre-loaded delivery, what it carries, and what kind of test it is."""

    delivery: contract.Delivery
    event: Event | None  # None: poison
    kind: str  # original, redelivery, poison


@dataclass(frozen=True)
class DataSet:
    items: list[Item]

    def count(self, kind: str) -> int:
        return Counter(item.kind for item in self.items)[kind]

    def head(self, size: int) -> DataSet:
        return DataSet(self.items[:size])

    def expected_state(self) -> dict[str, tuple[str, int, datetime]]:
        """Per appointment: (status, progress, last_event_at) of its newest event."""
        newest: dict[str, Event] = {}
        for item in self.items:
            event = item.event
            if event and (
                event.appointment_id not in newest or event.at > newest[event.appointment_id].at
            ):
                newest[event.appointment_id] = event
        return {
            key: (STATUS[e.event_type], PROGRESS[e.event_type], e.at) for key, e in newest.items()
        }


def drain_set(total: int, seed: int = 4) -> DataSet:
    """`total` deliveries: 1 in 10 a redelivery (same envelope id, after its original), a few
    poison bodies, and of the originals 90% on unique appointments (Started, then Completed)
    and 10% on hot appointments (about 100 events each, alternating); all shuffled."""
    rng = random.Random(seed)
    poison = max(3, total // 10_000)
    redeliveries = total // 10
    originals = total - redeliveries - poison
    hot = originals // 10
    events = _hot_events(hot, rng) + _unique_events(originals - hot)
    rng.shuffle(events)
    data = sample_data()
    placed = []
    for position, event in enumerate(events):
        body = envelope(
            event.event_type,
            with_appointment(data, event.appointment_id, event.event_type),
            str(uuid.UUID(int=rng.getrandbits(128))),
            event.at,
        )
        placed.append((position, Item(_accept(body), event, "original")))
    for position, original in rng.sample(placed, redeliveries):
        copy = Item(_accept(original.delivery.body), original.event, "redelivery")
        placed.append((rng.uniform(position, originals), copy))
    poison_body = printed_sample().encode()
    placed += [
        (rng.uniform(0, originals), Item(_accept(poison_body), None, "poison"))
        for _ in range(poison)
    ]
    placed.sort(key=lambda pair: pair[0])
    return DataSet([item for _, item in placed])


def _hot_events(count: int, rng: random.Random) -> list[Event]:
    appointments = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(max(1, count // 100))]
    return [
        Event(
            appointments[n % len(appointments)],
            STARTED if (n // len(appointments)) % 2 == 0 else COMPLETED,
            _EPOCH + timedelta(seconds=n // len(appointments), microseconds=n % 997),
        )
        for n in range(count)
    ]


def _unique_events(count: int) -> list[Event]:
    """Pairs of Started then Completed, one appointment per pair."""
    appointments = [str(uuid.uuid4()) for _ in range((count + 1) // 2)]
    return [
        Event(appointments[n // 2], (STARTED, COMPLETED)[n % 2], _EPOCH + timedelta(minutes=n % 2))
        for n in range(count)
    ]


def _accept(body: bytes) -> contract.Delivery:
    return contract.Delivery.accept(body, "")
