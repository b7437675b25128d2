"""`grep <ingest id>` over the ingress's and the worker's logs follows a delivery.

Deliveries posted to the real ingress app and drained by the worker's own Drainer, in this
process, every structlog event captured (all levels): each line about a delivery carries the
ingest id the 202 returned, and no line carries the personal data of the bodies.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import redis
from structlog.testing import capture_logs

from ingress import app as ingress_app
from tests import hostile
from tests.fixtures import draining, samples, wsgi
from zenoti_ingest import stream

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Lines about one delivery, by event name (the rest are about a batch, a slot, a process).
ABOUT_A_DELIVERY = ("delivery_", "event_", "stream_entry_")


def test_every_line_about_a_delivery_carries_its_ingest_id(settings, pool):
    """A processed delivery, its duplicate, one of an unhandled type, a schema failure and an
    unparsable body, all carrying canary names and emails: the ingress's line about each
    (delivery_enqueued) and the worker's (processed, duplicate, dead, event_unhandled) carry
    the ingest id from its 202; so does the line about a malformed stream entry; every line
    about a delivery has one; the batches' lines count the outcomes at INFO; no canary is in
    any line."""
    fast = dataclasses.replace(settings, drain_round_seconds=0.2, read_block_ms=20)
    canaries = hostile.Canaries()
    guest = canaries.inject(json.loads((EXAMPLES / "Guest.Created.json").read_bytes()))
    assert len(canaries.values) >= 2  # names and an email stand in the body now
    person = canaries.inject({"first_name": "", "email": ""})
    posts = {
        "processed": ("", json.dumps(guest).encode()),
        "duplicate": ("", json.dumps(guest).encode()),
        "unhandled": ("", samples.envelope("Guest.Forms.Filled", person, "u-1", "2024-01-01")),
        "schema": ("", samples.envelope("Guest.Created", {"id": person}, "s-1", "2024-01-01")),
        "parse": ("/Guest.Created", b'{"first_name": "' + person["first_name"].encode()),
    }
    worker_says = {
        "processed": "delivery_processed",
        "duplicate": "delivery_duplicate",
        "unhandled": "event_unhandled",
        "schema": "delivery_dead",
        "parse": "delivery_dead",
    }
    app = ingress_app.create_app(fast)
    client = redis.Redis.from_url(fast.redis_url)
    with capture_logs() as events:
        answers = {
            name: wsgi.call(app, "POST", f"/webhooks/zenoti{path}", body)
            for name, (path, body) in posts.items()
        }
        malformed = "0192f000-0000-7000-8000-000000000001"
        client.xadd(
            stream.Keys.of(fast).deliveries, {"ingest_id": malformed, "received_at_us": "soon"}
        )
        assert draining.until_empty(fast, pool).errors == []
    assert {a.status for a in answers.values()} == {202}
    ingest_ids = {name: a.json()["ingest_id"] for name, a in answers.items()}
    for name, ingest_id in ingest_ids.items():
        said = [e["event"] for e in events if e.get("ingest_id") == ingest_id]
        assert "delivery_enqueued" in said, name  # the ingress
        assert worker_says[name] in said, (name, said)  # the worker
    [line] = [e for e in events if e["event"] == "stream_entry_malformed"]
    assert line["ingest_id"] == malformed and line["log_level"] == "error"
    about = [e for e in events if e["event"].startswith(ABOUT_A_DELIVERY)]
    assert about and all(e.get("ingest_id") for e in about), about
    settled: Counter[str] = Counter()
    for e in events:
        if e["event"] == "batch_settled":
            assert e["log_level"] == "info"
            settled.update({k: e.get(k, 0) for k in ("processed", "duplicate", "dead")})
    assert settled == Counter(processed=2, duplicate=1, dead=2)
    logged = "\n".join(json.dumps(e, default=str, ensure_ascii=False) for e in events)
    assert [c for c in canaries.values if c in logged] == []
    client.close()
