"""Procfile and docker-compose.yml describe the same processes (no Docker engine runs here)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_procfile_has_release_web_worker_and_metrics():
    """release migrates, web serves, worker drains, metrics serves /metrics."""
    assert procfile() == {
        "release": "zenoti-ingest migrate",
        "web": "zenoti-ingest serve",
        "worker": "zenoti-ingest worker",
        "metrics": "zenoti-ingest metrics",
    }


def test_compose_runs_the_procfile_commands_with_a_persistent_redis():
    """Each Procfile line is a compose service with the same command; Redis keeps the queue
    (append-only file) and never evicts it."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {name: compose[name]["command"] for name in procfile()} == procfile()
    redis_command = compose["redis"]["command"]
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert {"redis", "postgres"} <= compose.keys()
