"""What a newcomer posts first: examples/ (what `make demo` sends) and the README's curl body."""

from __future__ import annotations

import re
from pathlib import Path

from tests.fixtures import samples
from tests.fixtures.database import delivery, fetch, write
from worker.pipeline import handlers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def test_one_example_per_event_type_of_the_sample_pages():
    """examples/ holds a body for every event type Zenoti's pages describe, and nothing else."""
    assert {path.stem for path in EXAMPLES} == set(samples.EVENT_TYPES.values())
    assert {path.stem for path in EXAMPLES} <= set(handlers.HANDLERS)


def test_every_example_is_processed_into_its_tables(pool, settings):
    """Posted to its event type's URL, each example is processed (none dead), so the README's
    example queries return rows after `make demo`."""
    sent = [delivery(path.read_bytes(), path.stem) for path in EXAMPLES]
    statuses = write(pool, *sent)
    assert {d.path_hint: statuses[d.ingest_id] for d in sent} == {
        path.stem: "processed" for path in EXAMPLES
    }
    for table in ("appointments", "invoices", "guests", "employees", "class_bookings"):
        assert fetch(settings.database_url, f"SELECT count(*) FROM {table}")[0][0] > 0, table


def test_the_readme_curl_body_is_processed(pool, settings):
    """The one-webhook-by-hand body in the README lands an appointment."""
    body = re.search(r"--data-binary '(.*?)'", (ROOT / "README.md").read_text(), re.S).group(1)
    d = delivery(body.encode(), "Appointment.Started")
    assert write(pool, d) == {d.ingest_id: "processed"}
    assert fetch(settings.database_url, "SELECT status FROM appointments") == [("started",)]
