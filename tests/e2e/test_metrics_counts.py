"""Counts are exact across processes and restarts: 2 ingress and 2 worker processes, one of
each restarted midway, and `zenoti-ingest metrics` scraped over HTTP, as Prometheus would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
import pytest
import redis

from tests.fixtures import exposition, ports, samples
from tests.fixtures.processes import CLI, wait_for
from tests.fixtures.services import settings_env
from zenoti_ingest import stream
from zenoti_ingest.settings import Settings

SECRET = "s3cret-of-east"
TOO_LARGE = b"x" * 5000  # over max_body_bytes below


@dataclass
class Deployment:
    """Named `zenoti-ingest` processes sharing one Redis prefix and database, each in its own
    process group, each with its own settings (port, worker node name)."""

    settings: Settings
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    ingress_ports: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, role: str, settings: Settings) -> None:
        env = {**os.environ, **settings_env(settings)}
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept by the child)
        self.processes[name] = subprocess.Popen(
            [*CLI, role], env=env, stdout=log, stderr=log, start_new_session=True
        )
        if role == "serve":
            self.ingress_ports[name] = settings.port
            wait_for(lambda: exposition.answers(f"{self.url(name)}/readyz"), what=f"{name} ready")
        elif role == "worker":
            node = settings.worker_name.split("@")[0]
            pattern = f"{settings.redis_prefix}:drain-slot:{node}@*"
            wait_for(lambda: self._redis().keys(pattern), what=f"{name}'s drain slot")
        else:
            wait_for(lambda: exposition.answers(self.metrics_url), what="the exporter")

    def stop(self, name: str) -> int:
        """SIGTERM to the whole process group (as `run` and a process manager stop it)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        return process.wait(30)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ingress_ports[name]}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.metrics_port}/metrics"

    def scrape(self) -> exposition.Scrape:
        return exposition.fetch(self.metrics_url)

    def post(self, ingress: str, path: str, body: bytes) -> int:
        request = urllib.request.Request(self.url(ingress) + path, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url)


@pytest.fixture
def deployment(settings: Settings, tmp_path: Path):
    settings = replace(
        settings,
        webhook_secrets={"": (), "east": (SECRET,)},
        max_body_bytes=4096,
        worker_concurrency=1,  # two workers: two pool processes in all
        claim_idle_seconds=5.0,
        retry_base_seconds=0.05,  # the workers get over the broken stream below quickly
        retry_max_seconds=0.5,
        metrics_port=ports.free_port(),
    )
    running = Deployment(settings, tmp_path)
    yield running
    running.stop_all()


class Traffic:
    """Requests of every outcome, and what each should come to."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.requests: Counter[tuple[str, str]] = Counter()  # (source, outcome)
        self.settled: Counter[str] = Counter()  # outcome
        self.dead: Counter[str] = Counter()  # failure class
        self.bodies: dict[str, bytes] = {}  # delivery id → body, for redeliveries
        self.unhandled_count = 0

    def send(self, ingress: str, outcome: str, source: str, path: str, body: bytes) -> None:
        status = self.deployment.post(ingress, path, body)
        expected = {
            "accepted": 202,
            "ping": 200,
            "unauthenticated": 401,
            "too_large": 413,
            "not_found": 404,
            "enqueue_failed": 503,
        }[outcome]
        assert status == expected, (outcome, status)
        self.requests[source, outcome] += 1

    def delivery(self, ingress: str) -> None:
        """A new Appointment.Started event: processed."""
        data = samples.repaired_json("appointment-started")
        data["appointments"][0]["id"] = str(uuid.uuid4())
        delivery_id = uuid.uuid4().hex
        body = samples.envelope("Appointment.Started", data, delivery_id, "2024-05-01T09:00:00Z")
        self.bodies[delivery_id] = body
        self.send(ingress, "accepted", "", "/webhooks/zenoti", body)
        self.settled["processed"] += 1

    def redelivery(self, ingress: str) -> None:
        """Zenoti sending an earlier event again: a duplicate."""
        self.send(ingress, "accepted", "", "/webhooks/zenoti", next(iter(self.bodies.values())))
        self.settled["duplicate"] += 1

    def poison(self, ingress: str) -> None:
        """The sample as printed (not JSON): a dead letter of class `parse`."""
        body = samples.printed_body("appointment-completed")
        self.send(ingress, "accepted", "", "/webhooks/zenoti/Appointment.Completed", body)
        self.settled["dead"] += 1
        self.dead["parse"] += 1

    def unknown(self, ingress: str) -> None:
        """No envelope and no event type in the URL: a dead letter, `unknown_event_type`."""
        self.send(ingress, "accepted", "", "/webhooks/zenoti", b'{"a": 1}')
        self.settled["dead"] += 1
        self.dead["unknown_event_type"] += 1

    def unhandled(self, ingress: str) -> None:
        """An enveloped event of a type nobody handles: archived (processed), counted under
        the event type `other`, so that the label stays bounded."""
        body = samples.envelope("Nope.Happened", {}, uuid.uuid4().hex, "2024-05-01T09:00:00Z")
        self.send(ingress, "accepted", "", "/webhooks/zenoti", body)
        self.settled["processed"] += 1
        self.unhandled_count += 1

    def refused(self, ingress: str) -> None:
        """One request of each outcome that never reaches the stream."""
        self.send(ingress, "ping", "", "/webhooks/zenoti", b"")
        self.send(ingress, "ping", "east", "/webhooks/zenoti/@east", b"")
        self.send(ingress, "unauthenticated", "east", "/webhooks/zenoti/@east", b'{"a": 1}')
        self.send(ingress, "too_large", "", "/webhooks/zenoti", TOO_LARGE)
        self.send(ingress, "not_found", "", "/webhooks/zenoti/@nobody/Appointment.Started", b"{}")

    def mixed_round(self, ingress: str) -> None:
        for _ in range(3):
            self.delivery(ingress)
        self.redelivery(ingress)
        self.poison(ingress)
        self.unknown(ingress)
        self.unhandled(ingress)
        self.refused(ingress)

    @property
    def accepted(self) -> int:
        return sum(n for (_, outcome), n in self.requests.items() if outcome == "accepted")


def requests_by_source_and_outcome(scrape: exposition.Scrape) -> Counter:
    return Counter(
        {
            (dict(labels)["source"], dict(labels)["outcome"]): int(value)
            for labels, value in scrape.series("zenoti_ingest_requests_total").items()
        }
    )


def settled_everything(deployment: Deployment, traffic: Traffic) -> exposition.Scrape:
    """The scrape once the workers have settled every accepted delivery."""

    def done() -> exposition.Scrape | None:
        scrape = deployment.scrape()
        settled = scrape.by("zenoti_ingest_deliveries_settled_total", "outcome")
        return scrape if sum(settled.values()) >= sum(traffic.settled.values()) else None

    return wait_for(done, timeout=60, what="every delivery settled")


def test_totals_are_exact_through_two_ingresses_two_workers_and_restarts(deployment):
    """Requests of every outcome through 2 ingress processes, settled by 2 worker processes;
    midway one ingress is stopped (SIGTERM) right after answering, with its last counts still
    in its buffer, and one worker is stopped, and both are started again. The exporter, scraped
    over HTTP, shows exactly what was sent: requests by source and outcome, deliveries settled
    by outcome, dead letters by class (counted, and in Postgres now), and no counter or
    histogram sample lower after the restart than before it."""
    settings = deployment.settings
    deployment.start("exporter", "metrics", settings)
    for name, port in (("ingress-a", ports.free_port()), ("ingress-b", ports.free_port())):
        deployment.start(name, "serve", replace(settings, port=port))
    nodes = {name: f"zi-{name}-{settings.redis_prefix}@%h" for name in ("worker-a", "worker-b")}
    for name, node in nodes.items():
        deployment.start(name, "worker", replace(settings, worker_name=node))
    traffic = Traffic(deployment)

    traffic.mixed_round("ingress-a")
    traffic.mixed_round("ingress-b")
    before = settled_everything(deployment, traffic)

    # The last requests before the stop are still in ingress-a's buffer (flushed every second):
    # its processes must write them as they exit.
    traffic.refused("ingress-a")
    traffic.delivery("ingress-a")
    assert deployment.stop("ingress-a") == 0
    assert deployment.stop("worker-a") == 0
    traffic.mixed_round("ingress-b")  # worker-b alone
    ingress_a_port = deployment.ingress_ports["ingress-a"]
    deployment.start("ingress-a", "serve", replace(settings, port=ingress_a_port))
    deployment.start("worker-a", "worker", replace(settings, worker_name=nodes["worker-a"]))
    after_restart = settled_everything(deployment, traffic)
    lower = {
        key: (value, after_restart.samples.get(key))
        for key, value in before.monotonic().items()
        if after_restart.samples.get(key, -1) < value
    }
    assert lower == {}, "samples lower after the restart than before it"

    traffic.mixed_round("ingress-a")
    traffic.mixed_round("ingress-b")
    # Redis refuses the write (the stream's key holds a string): 503, enqueue_failed.
    client = redis.Redis.from_url(settings.redis_url)
    settled_everything(deployment, traffic)
    key = stream.Keys.of(settings).deliveries
    client.delete(key)
    client.set(key, "not a stream")
    for ingress in ("ingress-a", "ingress-b", "ingress-b"):
        traffic.send(ingress, "enqueue_failed", "", "/webhooks/zenoti", b'{"a": 1}')
    client.delete(key)
    traffic.delivery("ingress-a")  # and the pipeline goes on

    settled_everything(deployment, traffic)

    def requests_counted() -> exposition.Scrape | None:
        scrape = deployment.scrape()
        counted = sum(requests_by_source_and_outcome(scrape).values())
        return scrape if counted >= sum(traffic.requests.values()) else None

    final = wait_for(
        requests_counted, timeout=10, what="the ingresses' last counts (flushed every second)"
    )

    assert requests_by_source_and_outcome(final) == traffic.requests
    assert final.by("zenoti_ingest_deliveries_settled_total", "outcome") == traffic.settled
    assert (
        final.value(
            "zenoti_ingest_deliveries_settled_total", event_type="other", outcome="processed"
        )
        == traffic.unhandled_count
    )
    assert final.by("zenoti_ingest_dead_letters_total", "failure_class") == traffic.dead
    assert final.by("zenoti_ingest_dead_letters", "failure_class") == traffic.dead
    assert final.value("zenoti_ingest_enqueue_seconds_count") == traffic.accepted
    assert final.value("zenoti_ingest_end_to_end_seconds_count") == traffic.accepted
    assert final.value("zenoti_ingest_batch_size_sum") == traffic.accepted
    assert final.value("zenoti_ingest_stream_backlog") == 0
    assert final.value("zenoti_ingest_workers_alive") == 2
    with psycopg.connect(settings.database_url) as conn:
        in_postgres = dict(
            conn.execute("SELECT status, count(*) FROM webhook_events GROUP BY 1").fetchall()
        )
    assert in_postgres == traffic.settled
    assert deployment.stop("exporter") == 0  # SIGTERM: a clean stop
