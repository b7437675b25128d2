"""The backfill runner in-process against the fake Zenoti API, real Redis and Postgres (no
worker: what it enqueues is read back from the stream): the shared pace, 429s, paging, a
response that does not fit, and resuming."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import date

import psycopg
import pytest
import redis
from structlog.testing import capture_logs

from backfill import checkpoints, plan, rate
from backfill import run as runner
from tests.fixtures.fake_zenoti import FakeZenoti, generate
from zenoti_ingest import errors, stream

KEY = "k-9d2c"
FIRST = date(2026, 11, 2)


def api_settings(settings, api: FakeZenoti, per_window: int = 40):
    return settings.replace(
        api_url=api.url,
        api_keys={"": KEY},
        api_calls_per_minute=per_window,
        api_rate_window_seconds=api.window_seconds,
        api_timeout_seconds=1.0,
    )


def request(**changes) -> plan.Request:
    return plan.Request(
        **{"source": "", "since": FIRST, "until": FIRST, "horizon_days": 0, **changes}
    )


def enqueued(settings) -> list:
    client = redis.Redis.from_url(settings.redis_url)
    entries = client.xrange(stream.Keys.of(settings).deliveries)
    return [stream.decode(fields) for _, fields in entries]


def test_processes_of_a_source_share_one_pace_and_a_deferral(settings):
    """Two limiters (two processes) of one source: reservations alternate between them yet
    stay `interval` apart; a deferral (a 429's Retry-After) holds both back."""
    settings = settings.replace(api_calls_per_minute=10, api_rate_window_seconds=10.0)
    client = redis.Redis.from_url(settings.redis_url)
    slept: list[float] = []
    one, two = (rate.Limiter(client, settings, "east", slept.append) for _ in range(2))
    waits = [(one if n % 2 else two).wait() for n in range(6)]
    interval = rate.MARGIN * 10.0 / 10
    steps = [b - a for a, b in itertools.pairwise(waits)]
    assert all(abs(step - interval) < 0.05 for step in steps), steps
    other = rate.Limiter(client, settings, "west", slept.append)
    assert other.wait() < 0.05  # another source has a pace of its own
    one.defer(30.0)
    assert two.wait() >= 29.9


def test_a_throttled_and_paged_run_enqueues_every_record_within_the_rate(settings, monkeypatch):
    """Other integrations empty the organization's bucket: a 429's Retry-After holds the run
    back; its own pace is above the bucket's refill, so RateLimit-Remaining slows it further;
    reports paged 3 rows a page: every invoice is read once, every record is enqueued, no 2 s
    window above the allowance."""
    monkeypatch.setattr(plan, "PAGE_SIZE", 3)
    world = generate(centers=1, first=FIRST, days=7, per_day=3)
    with FakeZenoti(world, KEY, limit=10, window_seconds=2.0, faults={3: "429"}) as api:
        settings = api_settings(settings, api, per_window=15)
        summary = runner.run(settings, request(until=date(2026, 11, 15)))
        assert summary.status == "done", summary.stopped
        # One 429, the fault: RateLimit-Remaining kept it from emptying the bucket itself,
        # though its own pace (15 a window) is above the bucket's refill (10).
        [throttled] = [n for n, c in enumerate(api.calls) if c.status == 429]
        assert api.calls[throttled + 1].at - api.calls[throttled].at >= 0.95  # Retry-After: 1
        assert api.most_in_any_window() <= 15
        invoice_calls = [c for c in api.succeeded() if c[1].startswith("/v1/invoices/")]
        assert sorted(c[1].rsplit("/", 1)[1] for c in invoice_calls) == sorted(world.invoices)
        pages = [c for c in api.succeeded() if c[0] == "POST"]
        rows = len(world.sales[world.centers[0]])  # all in the first week
        assert len(pages) == -(-rows // 3) + 1  # and the second week's one empty page
    deliveries = enqueued(settings)
    assert len(deliveries) == summary.records_found
    bodies = {json.loads(d.body).get("appointment_id") for d in deliveries}
    assert {a["appointment_id"] for a in world.appointments[world.centers[0]]} <= bodies
    assert all(d.received_at_us > 0 and d.path_hint.count(".") >= 1 for d in deliveries)


def test_a_response_that_does_not_fit_stops_its_resource_and_resumes_later(settings, invoke):
    """Report rows without an invoice id: invoices stop with a message naming the endpoint
    and the field, never a value; appointments finish; the run is incomplete. Once Zenoti
    answers well, the same request resumes that run and makes only the calls left. Nothing
    personal reaches the logs or the checkpoints."""
    world = generate(centers=1, first=FIRST, days=3, per_day=3)
    rows = world.sales[world.centers[0]]
    saved = [r["invoice_id"] for r in rows]
    for row in rows:
        row["invoice_id"] = 12345
    with FakeZenoti(world, KEY, window_seconds=2.0) as api:
        settings = api_settings(settings, api)
        with capture_logs() as logs:
            first = runner.run(settings, request(until=date(2026, 11, 4)))
        assert first.status == "incomplete"
        why = first.stopped["invoices"]
        assert "POST /v1/reports/sales/accrual_basis/flat_file" in why
        assert "sales[].invoice_id" in why and "12345" not in why
        assert first.calls["appointments"][0] == first.calls["appointments"][1]
        text = json.dumps(logs, default=str)
        assert "Dana" not in text and "example.invalid" not in text and KEY not in text
        made = len(api.succeeded())

        for row, invoice_id in zip(rows, saved, strict=True):
            row["invoice_id"] = invoice_id
        second = runner.run(settings, request(until=date(2026, 11, 4)))
        assert second.run_id == first.run_id and second.status == "done"
        again = api.succeeded()[made:]
        assert not any(c[1] == "/v1/appointments" for c in again)  # done before: not repeated
        assert len(again) == second.calls_made
    with psycopg.connect(settings.database_url) as conn:
        [run] = checkpoints.runs(conn, None)
        stored = json.dumps(checkpoints.jsonable(run)) + json.dumps(
            conn.execute("SELECT json_agg(params) FROM backfill_calls").fetchone()[0]
        )
    assert run.status == "done" and "Dana" not in stored and KEY not in stored
    shown = invoke("backfill", "status").stdout
    assert f"{run.calls_done}/{run.calls_planned}" in shown and " done " in shown
    [listed] = json.loads(invoke("backfill", "status", "--json").stdout)
    assert listed["run_id"] == run.run_id and listed["status"] == "done"


def test_a_refused_key_stops_the_run_naming_the_variable(settings):
    world = generate(centers=1, first=FIRST, days=1, per_day=1)
    with FakeZenoti(world, "another-key", window_seconds=2.0) as api:
        with pytest.raises(errors.ApiKeyRefused, match="ZENOTI_INGEST_API_KEY") as caught:
            runner.run(api_settings(settings, api), request())
        assert KEY not in str(caught.value)


def test_the_dry_run_counts_the_calls_and_calls_nothing(settings, invoke):
    """Two centers over a 3-day outage, a 14-day horizon: appointment windows over 17 dates
    (3 each), one report week each, one employees page and one members page each; their time
    at the pace; no key needed, nothing called."""
    one, two = "ce47e400-bbbb-44a4-1718-000000000001", "ce47e400-bbbb-44a4-1718-000000000002"
    args = ["backfill", "--since", "2026-11-02T13:00", "--until", "2026-11-04T09:00"]
    args += ["--center", one, "--center", two, "--horizon-days", "14", "--dry-run", "--json"]
    shown = json.loads(invoke(*args).stdout)
    assert (shown["since"], shown["until"]) == ("2026-11-02", "2026-11-04")
    assert shown["calls"] == {"appointments": 6, "invoices": 2, "employees": 2, "memberships": 2}
    assert shown["seconds"] == round(12 * 60 / 40 * rate.MARGIN, 1)
    with psycopg.connect(settings.database_url) as conn:
        assert checkpoints.runs(conn, None) == []


def test_guests_updated_since_are_read_page_by_page(settings, monkeypatch):
    """Guests only when asked: the center's guests with `last_updated` from --since's date,
    2 a page (page_Info, capital I, says how many): each enqueued once as Guest.Snapshot."""
    monkeypatch.setattr(plan, "PAGE_SIZE", 2)
    world = generate(centers=1, first=FIRST, days=1, per_day=1)
    center = world.centers[0]
    world.guests[center] += [
        (date(2026, 11, 5), {**row, "id": str(uuid.uuid4())}) for _, row in world.guests[center]
    ]
    updated = [row["id"] for day, row in world.guests[center] if day >= date(2026, 11, 3)]
    with FakeZenoti(world, KEY, window_seconds=2.0) as api:
        summary = runner.run(
            api_settings(settings, api), request(since=date(2026, 11, 3), resources=("guests",))
        )
        assert summary.status == "done" and summary.calls == {"guests": (3, 3)}  # 5 guests
        assert len([c for c in api.succeeded() if c[1] == "/v1/guests"]) == 3
    deliveries = enqueued(settings)
    assert sorted(json.loads(d.body)["id"] for d in deliveries) == sorted(updated)
    assert {d.path_hint.split(".")[:2] == ["Guest", "Snapshot"] for d in deliveries} == {True}


def test_members_are_read_page_by_page_whatever_the_window(settings, monkeypatch):
    """Memberships: the center's members, 2 a page (page_info says how many), with no date
    filter (its meaning is undocumented): every membership is enqueued once as
    Membership.Snapshot with the center it was read for."""
    monkeypatch.setattr(plan, "PAGE_SIZE", 2)
    world = generate(centers=1, first=FIRST, days=1, per_day=1)
    center = world.centers[0]
    world.members[center] += [{**row, "id": str(uuid.uuid4())} for row in world.members[center]]
    world.members[center].append({**world.members[center][0], "id": str(uuid.uuid4())})
    with FakeZenoti(world, KEY, window_seconds=2.0) as api:
        summary = runner.run(api_settings(settings, api), request(resources=("memberships",)))
        assert summary.status == "done" and summary.calls == {"memberships": (3, 3)}  # 5 rows
        queries = [c[2] for c in api.succeeded() if c[1] == f"/v1/centers/{center}/members"]
        assert queries == ["page=1&size=2", "page=2&size=2", "page=3&size=2"]
    deliveries = enqueued(settings)
    assert sorted(json.loads(d.body)["id"] for d in deliveries) == sorted(
        row["id"] for row in world.members[center]
    )
    assert {d.path_hint.rsplit(".", 1)[0] for d in deliveries} == {"Membership.Snapshot"}


def test_class_sessions_are_read_per_window_and_page(settings, monkeypatch):
    """Classes when asked: the center's sessions per 7-day window, 2 a page (page_details
    says how many): every session of the dates is enqueued as ClassSession.Snapshot (the day
    where two windows meet is read twice); no call but the centers list and the sessions."""
    monkeypatch.setattr(plan, "PAGE_SIZE", 2)
    world = generate(centers=1, first=FIRST, days=10, per_day=1)
    center = world.centers[0]
    with FakeZenoti(world, KEY, window_seconds=2.0) as api:
        summary = runner.run(
            api_settings(settings, api),
            request(until=date(2026, 11, 11), resources=("classes",)),
        )
        assert summary.status == "done", summary.stopped
        # Two windows: 2-9 November (8 sessions, 4 pages), 9-16 (3 sessions, 2 pages).
        assert summary.calls == {"classes": (6, 6)}
        assert {c[1] for c in api.succeeded()} == {"/v1/centers", "/v1/classes/sessions"}
    deliveries = enqueued(settings)
    assert len(deliveries) == 11
    assert {json.loads(d.body)["id"] for d in deliveries} == {
        s["id"] for s in world.sessions[center]
    }
    assert {d.path_hint.rsplit(".", 1)[0] for d in deliveries} == {"ClassSession.Snapshot"}


@pytest.mark.parametrize("resources", [("invoices", "packages"), ("packages",)])
def test_package_buyers_come_from_the_report_read_once(settings, monkeypatch, resources):
    """Packages: the guests of the report's Package rows, each read once (two buyers, one of
    them on two report pages: one call); the report is not read again for them, and without
    `invoices` no invoice is read. Each package is enqueued as Package.Snapshot."""
    monkeypatch.setattr(plan, "PAGE_SIZE", 2)
    world = generate(centers=1, first=FIRST, days=3, per_day=3)
    center = world.centers[0]
    buyer, other = world.guests[center][2][1]["id"], world.guests[center][0][1]["id"]
    package_rows = [r for r in world.sales[center] if r["item_type"] == "Package"]
    world.sales[center] += [{**package_rows[0], "guest_id": g} for g in (buyer, other)]
    world.packages[other] = [{**world.packages[buyer][0], "user_package_id": str(uuid.uuid4())}]
    with FakeZenoti(world, KEY, window_seconds=2.0) as api:
        summary = runner.run(
            api_settings(settings, api), request(until=date(2026, 11, 4), resources=resources)
        )
        assert summary.status == "done", summary.stopped
        made = api.succeeded()
        reports = [c for c in made if c[0] == "POST"]
        assert len(reports) == len(set(reports)) == -(-len(world.sales[center]) // 2)
        package_calls = sorted(c[1] for c in made if c[1].endswith("/packages"))
        assert package_calls == sorted(f"/v1/guests/{g}/packages" for g in (buyer, other))
        invoice_calls = [c for c in made if c[1].startswith("/v1/invoices/")]
        assert len(invoice_calls) == (len(world.invoices) if "invoices" in resources else 0)
    packages = [d for d in enqueued(settings) if d.path_hint.startswith("Package.Snapshot.")]
    assert sorted(json.loads(d.body)["user_package_id"] for d in packages) == sorted(
        p["user_package_id"] for rows in world.packages.values() for p in rows
    )
