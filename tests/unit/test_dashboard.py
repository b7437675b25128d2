"""deploy/grafana and the `monitoring` profile: the dashboard's queries are PromQL over our
metric names, its datasource is the provisioned one, and docker-compose.yml mounts them all.
(tests/e2e/test_prometheus.py checks against a real Prometheus that each name has series.)"""

from __future__ import annotations

import subprocess

import yaml

from tests.fixtures import monitoring

# The names issue 12 fixes, and the exporter's own; histograms are queried by their series.
HISTOGRAMS = {
    "zenoti_ingest_enqueue_seconds",
    "zenoti_ingest_end_to_end_seconds",
    "zenoti_ingest_batch_size",
    "zenoti_ingest_batch_seconds",
}
SCALARS = {
    "zenoti_ingest_requests_total",
    "zenoti_ingest_deliveries_settled_total",
    "zenoti_ingest_dead_letters_total",
    "zenoti_ingest_drain_retries_total",
    "zenoti_ingest_stream_backlog",
    "zenoti_ingest_stream_lag",
    "zenoti_ingest_oldest_waiting_seconds",
    "zenoti_ingest_pending",
    "zenoti_ingest_workers_alive",
    "zenoti_ingest_dead_letters",
    "zenoti_ingest_last_received_timestamp_seconds",
    "zenoti_ingest_service_up",
}
KNOWN = SCALARS | {f"{h}_{part}" for h in HISTOGRAMS for part in ("bucket", "sum", "count")}
PANELS = {
    "traffic per source": "Deliveries accepted per source",
    "outcomes": "Requests by outcome",
    "settled": "Deliveries settled by outcome",
    "end-to-end percentiles": "End-to-end latency",
    "backlog": "Backlog and lag",
    "oldest age": "Oldest waiting delivery",
    "dead letters by class": "Dead letters by class, now",
    "workers alive": "Workers alive",
}


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses every query of the dashboard (as recording rules)."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr}
                    for n, expr in enumerate(monitoring.dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [monitoring.binary("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_what_the_issue_asks_with_known_names_only():
    """The panels the issue lists are there, and every zenoti_ingest_* name in a query or a
    rule is one the exporter serves (a typo fails here, before any Prometheus runs)."""
    titles = {panel["title"] for panel in monitoring.dashboard_panels()}
    assert set(PANELS.values()) <= titles
    used = monitoring.metric_names(monitoring.dashboard_exprs())
    assert used - KNOWN == set()
    rules = monitoring.metric_names([rule["expr"] for rule in monitoring.alert_rules()])
    assert rules - KNOWN == set()


def test_dashboard_uses_the_provisioned_datasource():
    """Every panel and query names the datasource uid that provisioning creates, so the
    dashboard works on a fresh Grafana without a manual step."""
    provisioned = yaml.safe_load(
        (monitoring.GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    (datasource,) = provisioned
    assert datasource["type"] == "prometheus"
    ids = {panel["id"] for panel in monitoring.dashboard()["panels"]}
    assert len(ids) == len(monitoring.dashboard()["panels"])
    for panel in monitoring.dashboard_panels():
        for source in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert source == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


def test_monitoring_profile_mounts_the_files_kept_here():
    """`docker compose --profile monitoring` runs Prometheus and Grafana on the repo's files:
    each bind mount exists, Grafana's dashboard provider reads where the JSON is mounted, and
    Prometheus is only in that profile."""
    compose = yaml.safe_load((monitoring.ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        assert compose[name]["profiles"] == ["monitoring"]
        for volume in compose[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (monitoring.ROOT / source).exists(), volume
    mounts = dict(v.split(":")[:2] for v in compose["grafana"]["volumes"])
    provider = yaml.safe_load(
        (monitoring.GRAFANA_DIR / "provisioning" / "dashboards" / "zenoti-ingest.yml").read_text()
    )["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    prometheus_mounts = dict(v.split(":")[:2] for v in compose["prometheus"]["volumes"])
    assert prometheus_mounts["./deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in compose["prometheus"]["command"]
