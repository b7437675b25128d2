"""End to end: a real Prometheus (Debian's binary) scraping `zenoti-ingest metrics` during a
short pipeline run (ingress and worker processes), so the dashboard and the rules cannot rot.

Prometheus listens on loopback on a free port, keeps its data in the test's tmp_path, scrapes
and evaluates every second, and loads a test copy of deploy/prometheus/alerts.yml that differs
only in durations: every `for:` is FOR_SECONDS and ZenotiSourceSilent's N is SILENT_SECONDS
instead of 15 minutes (the copy fails if those spots move). The pipeline's Redis is a
redis-server of the test's own, so stopping it touches nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql as pgsql

from tests.fixtures import monitoring, ports, samples
from tests.fixtures.chaos.servers import RedisServer
from tests.fixtures.processes import CLI, Pipeline, wait_for
from tests.fixtures.services import dbname, settings_env
from zenoti_ingest.settings import Settings

FOR_SECONDS = 2
SILENT_SECONDS = 6  # > a busy source's worst staleness here: 1 s flush + 1 s scrape + 1 s eval
SILENT_N = "15 * 60"  # ZenotiSourceSilent's N in alerts.yml
SECRET = "prometheus-test-secret"
STARTED = samples.repaired_body("appointment-started")


def rules_for_test() -> str:
    """alerts.yml with FOR_SECONDS for every `for:` and SILENT_SECONDS for the silence N."""
    document = yaml.safe_load(monitoring.ALERTS.read_text())
    shortened = 0
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{FOR_SECONDS}s"
                shortened += 1
            if rule.get("alert") == "ZenotiSourceSilent":
                assert rule["expr"].count(SILENT_N) == 1, f"its N is no longer {SILENT_N}"
                rule["expr"] = rule["expr"].replace(SILENT_N, str(SILENT_SECONDS))
    assert shortened >= 5
    return yaml.safe_dump(document, sort_keys=False)


class Prometheus:
    """The Prometheus server of Debian's package, on loopback, with its own storage."""

    def __init__(self, directory: Path, target: str) -> None:
        self.port = ports.free_port()
        directory.mkdir()
        (directory / "alerts.yml").write_text(rules_for_test())
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [
                {"job_name": "zenoti-ingest", "static_configs": [{"targets": [target]}]}
            ],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = directory / "prometheus.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    monitoring.binary("prometheus"),
                    f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_for(self._ready, 30, "Prometheus's /-/ready")
        # Ready is not yet watching: it applies scrape targets up to 5 s later. Traffic sent
        # before its first scrape could leave no trace (the per-consumer series, for one,
        # last only seconds after the worker's last read).
        wait_for(lambda: self.value('up{job="zenoti-ingest"}') == 1, 30, "a first scrape")

    def get(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def names(self) -> set[str]:
        """Our metric names that have series in Prometheus."""
        return set(
            self.get("/api/v1/label/__name__/values", **{"match[]": '{__name__=~"zenoti_.+"}'})
        )

    def firing(self, alertname: str) -> list[dict]:
        alerts = self.get("/api/v1/alerts")["alerts"]
        return [
            a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def value(self, query: str) -> float | None:
        result = self.get("/api/v1/query", query=query)["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1):
                return True
        except OSError:
            return False


@dataclass
class Monitored:
    pipeline: Pipeline
    redis: RedisServer
    prometheus: Prometheus

    def post(self, body: bytes, path: str) -> int:
        return self.pipeline.post(body, path)[0]


@pytest.fixture
def monitored(settings: Settings, tmp_path: Path) -> Iterator[Monitored]:
    """Redis of the test's own; ingress, worker and `zenoti-ingest metrics` on it and on the
    test's database; a Prometheus scraping the exporter. Sources: the default one and "quiet"
    without a secret, "signed" with one."""
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    settings = settings.replace(
        redis_url=redis_server.url,
        port=ports.free_port(),
        metrics_port=ports.free_port(),
        worker_name=f"zi-prometheus-{os.getpid()}@%h",
        claim_idle_seconds=5.0,
        webhook_secrets={"": (), "quiet": (), "signed": (SECRET,)},
    )
    pipeline = Pipeline(settings, tmp_path)
    exporter = None
    prometheus = None
    try:
        pipeline.start("serve")
        pipeline.start("worker")
        with (tmp_path / "metrics.log").open("ab") as log:
            exporter = subprocess.Popen(
                [*CLI, "metrics"],
                env={**os.environ, **settings_env(settings)},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        metrics_url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
        wait_for(lambda: _answers(metrics_url), 30, "the exporter's /metrics")
        prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{settings.metrics_port}")
        yield Monitored(pipeline, redis_server, prometheus)
    finally:
        if not redis_server.answers():
            redis_server.start()  # so the processes stop as they do in production
        if prometheus is not None:
            prometheus.stop()
        if exporter is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(exporter.pid, signal.SIGTERM)
            exporter.wait(30)
        pipeline.stop()
        redis_server.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def postgres_refusing(pg_admin: psycopg.Connection, database_url: str) -> Iterator[None]:
    """The test's database refuses connections (its open ones terminated) until the block ends."""
    name = dbname(database_url)
    ident = pgsql.Identifier(name)
    pg_admin.execute(pgsql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
    try:
        pg_admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        yield
    finally:
        pg_admin.execute(pgsql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))


def test_every_name_of_the_dashboard_and_rules_has_series_and_a_silent_source_alerts(
    monitored: Monitored, pg_admin: psycopg.Connection
):
    """A run that produces every outcome (accepted from two sources, a ping, an unsigned
    request to a signed source, a dead letter, a drain retry while Postgres refuses) gives a
    series in Prometheus for every metric name the dashboard JSON and the alert rules use.
    Then ZenotiSourceSilent fires for the source that went quiet, and only for it: the default
    source, still sending, stays unalerted."""
    prometheus, pipeline = monitored.prometheus, monitored.pipeline
    assert monitored.post(STARTED, "@quiet/Appointment.Started") == 202
    assert monitored.post(STARTED, "Appointment.Started") == 202
    assert monitored.post(b"", "Appointment.Started") == 200  # ping
    assert monitored.post(STARTED, "@signed/Appointment.Started") == 401
    assert monitored.post(b"not json at all", "Appointment.Started") == 202  # a dead letter
    with postgres_refusing(pg_admin, pipeline.settings.database_url):
        assert monitored.post(STARTED, "Appointment.Started") == 202
        wait_for(lambda: '"drain_retried"' in pipeline.logs(), 60, "a drain retry")

    needed = monitoring.metric_names(
        monitoring.dashboard_exprs() + [rule["expr"] for rule in monitoring.alert_rules()]
    )
    assert len(needed) >= 15
    with contextlib.suppress(pytest.fail.Exception):
        wait_for(lambda: needed <= prometheus.names(), 60, "every name in Prometheus")
    assert needed - prometheus.names() == set()

    last_post = [0.0]

    def only_the_quiet_source_alerted() -> list[dict]:
        """Posts for the default source every half second; returns the firing alerts once
        "quiet" alone has one (the default source may have fired while the names were
        awaited: its alert clears once it sends again)."""
        if time.monotonic() - last_post[0] > 0.5:
            assert monitored.post(STARTED, "Appointment.Started") == 202
            last_post[0] = time.monotonic()
        firing = prometheus.firing("ZenotiSourceSilent")
        return firing if [_source(a) for a in firing] == ["quiet"] else []

    (alert,) = wait_for(only_the_quiet_source_alerted, 60, 'ZenotiSourceSilent for "quiet" alone')
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"].startswith('Source "quiet" has sent nothing for ')
    assert float(alert["value"]) > SILENT_SECONDS


def _source(alert: dict) -> str:
    return alert["labels"].get("source", "")


def test_ingress_failing_fires_when_redis_stops(monitored: Monitored):
    """With the pipeline's Redis stopped, the ingress answers 503 and ZenotiIngressFailing
    fires (through the exporter's zenoti_ingest_service_up{service="redis"}, since the 503
    counts cannot reach Redis); it was quiet before. Once Redis is back, the 503s the ingress
    held are counted, exactly."""
    prometheus = monitored.prometheus
    assert monitored.post(STARTED, "Appointment.Started") == 202
    wait_for(
        lambda: prometheus.value('zenoti_ingest_service_up{service="redis"}') == 1,
        30,
        "Prometheus to see Redis up",
    )
    assert prometheus.firing("ZenotiIngressFailing") == []

    monitored.redis.stop()
    failed = 0

    def webhooks_fail_until_it_fires() -> list[dict]:
        nonlocal failed
        assert monitored.post(STARTED, "Appointment.Started") == 503
        failed += 1
        return prometheus.firing("ZenotiIngressFailing")

    (alert,) = wait_for(webhooks_fail_until_it_fires, 60, "ZenotiIngressFailing")
    assert alert["labels"]["severity"] == "page"
    assert alert["labels"]["service"] == "redis"
    assert alert["annotations"]["summary"].startswith("Redis does not answer")

    monitored.redis.start()
    query = 'sum(zenoti_ingest_requests_total{outcome="enqueue_failed"})'
    wait_for(lambda: prometheus.value(query) == failed, 30, f"{failed} 503s counted")
