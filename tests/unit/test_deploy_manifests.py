"""deploy/kubernetes runs the Procfile's processes, KEDA watches our stream's consumer group, and
every worker replica (Kubernetes or `docker compose up --scale worker=N`) is a node of its own.

No cluster or Docker engine runs here: the manifests are parsed and checked against the
Procfile, the settings and the stream's key names.
"""

from __future__ import annotations

import yaml

from tests.unit.test_deploy_files import ROOT, procfile
from zenoti_ingest import stream
from zenoti_ingest.settings import Settings

KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPONENT = "app.kubernetes.io/component"


def manifests() -> list[dict]:
    return [
        document
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def of_kind(kind: str) -> list[dict]:
    return [m for m in manifests() if m["kind"] == kind]


def workloads() -> dict[str, dict]:
    """Procfile role → the Deployment or Job that runs it (by its component label)."""
    found = {}
    for manifest in of_kind("Deployment") + of_kind("Job"):
        found[manifest["metadata"]["labels"][COMPONENT]] = manifest
    return found


def container(workload: dict) -> dict:
    [only] = workload["spec"]["template"]["spec"]["containers"]
    return only


def secret() -> dict[str, str]:
    [only] = of_kind("Secret")
    return only["stringData"]


def test_kustomization_lists_every_manifest():
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(on_disk)


def test_each_procfile_process_runs_its_procfile_command():
    """release is a Job, web, worker and metrics Deployments; each container's command is the
    Procfile's line, word for word."""
    running = workloads()
    assert running.keys() == procfile().keys()
    for role, command in procfile().items():
        assert " ".join(container(running[role])["command"]) == command, role
    assert workloads()["release"]["kind"] == "Job"


def test_containers_read_only_settings_we_declare():
    """Every environment variable set is a setting (or REDIS_ADDRESS, the Redis that KEDA
    reads), so a typo cannot silently leave a default in place."""
    known = set(Settings().to_env()) | {"REDIS_ADDRESS"}
    assert set(secret()) <= known
    for role, workload in workloads().items():
        names = {variable["name"] for variable in container(workload).get("env", [])}
        assert names <= known, role
        assert container(workload)["envFrom"] == [{"secretRef": {"name": "zenoti-ingest"}}]


def test_keda_scales_the_workers_on_the_consumer_groups_lag():
    """The ScaledObject targets the worker Deployment, reads the lag of the stream and group
    the workers use (their names under the default prefix), at the Redis of REDIS_URL."""
    [scaled] = of_kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == workloads()["worker"]["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    metadata = trigger["metadata"]
    keys = stream.Keys.of(Settings())
    assert (metadata["stream"], metadata["consumerGroup"]) == (keys.deliveries, keys.group)
    assert int(metadata["lagCount"]) > 0 and int(metadata["activationLagCount"]) >= 0
    assert not {"pendingEntriesCount", "streamLength"} & metadata.keys()  # lag, not these
    redis_url = secret()["REDIS_URL"]
    host_port, database = redis_url.removeprefix("redis://").split("/")
    assert secret()[metadata["addressFromEnv"]] == host_port
    assert metadata["databaseIndex"] == database


def test_worker_replicas_get_distinct_node_names_on_kubernetes():
    """The node name is the default `…@%h`, and %h is the pod's host name: its pod name,
    unique per replica (nothing sets a hostname or a fixed node name)."""
    worker = workloads()["worker"]
    assert "%h" in Settings().worker_name
    assert "hostname" not in worker["spec"]["template"]["spec"]
    assert "ZENOTI_INGEST_WORKER_NAME" not in secret()
    assert all(v["name"] != "ZENOTI_INGEST_WORKER_NAME" for v in container(worker)["env"])


def test_compose_scaled_workers_get_distinct_node_names():
    """`docker compose up --scale worker=3`: each container's host name is its own container
    id (the service sets no hostname, and no container_name, which would forbid scaling), and
    the node name is the default `…@%h`, so three workers are three Celery nodes with their
    own drain-slot leases."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker = compose["worker"]  # merged with the x-app anchor by the YAML loader
    assert "hostname" not in worker and "container_name" not in worker
    assert "ZENOTI_INGEST_WORKER_NAME" not in worker.get("environment", {})
    assert "%h" in Settings().worker_name
