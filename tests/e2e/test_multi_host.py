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
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from tests.fixtures import multi_host, netns
from tests.fixtures.chaos import labs, verify

# How long the worker host stays cut off: past the claim timeout, Postgres's idle-in-transaction
# limit (multi_host.IDLE_IN_TRANSACTION) and its drain slot's lease (10 s).
CUT_SECONDS = 12.0
BATCH = 40  # deliveries let pile up so that the worker cut off holds a batch


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[multi_host.Cluster]:
    with multi_host.built(tmp_path) as running:
        yield running


def pending_of(client: redis.Redis, node: multi_host.Node) -> list[dict]:
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
def stopped(*nodes: multi_host.Node) -> Iterator[None]:
    for node in nodes:
        node.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for node in nodes:
            node.signal(signal.SIGCONT)


def catch_mid_batch(
    client: redis.Redis, cut: multi_host.Node, other: multi_host.Node
) -> list[dict]:
    """Stop both workers until a backlog builds, let `cut` alone take it as one batch, and stop
    it again holding that batch unacknowledged (SIGSTOPped: what it holds is what it is cut
    off with); its entries, once `cut` is running again (still stopped on return)."""
    for _ in range(20):
        with stopped(other):
            with stopped(cut):
                multi_host.wait_until(
                    lambda: unread(client) >= BATCH, 30, "a backlog", interval=0.01
                )
            with contextlib.suppress(BaseException):
                multi_host.wait_until(
                    lambda: len(pending_of(client, cut)) >= BATCH // 2, 5, "a batch", 0.002
                )
            cut.signal(signal.SIGSTOP)
            held = pending_of(client, cut)
            if len(held) >= BATCH // 2:
                return held
            cut.signal(signal.SIGCONT)
    pytest.fail(f"never caught {cut.name} with a batch in flight")


def test_tear_down_leaves_no_namespace_veth_or_process(tmp_path):
    """Closing a network kills what was started on its hosts and what escaped their process
    groups (a daemon in its own session), then deletes every namespace, and the veths with them."""
    network = multi_host.network_or_skip()
    try:
        host = network.add("h1")
        network.add("h2")
        host.spawn(["sleep", "300"], tmp_path / "sleep.log")
        escaped = host.spawn(["setsid", "--fork", "sleep", "300"], tmp_path / "escaped.log")
        escaped.wait(10)  # its child lives on, in a session of its own
        namespaces = [network.lan, *(h.netns for h in network.hosts.values())]
        multi_host.wait_until(lambda: netns._pids(host.netns), 10, "the processes in h1")
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
    plan = multi_host.hot_plan("multi-host", cold=1_300, hot=6, events_each=25)
    addresses = tuple(node.host.address for node in cluster.ingresses)
    traffic = multi_host.LoadHost(
        multi_host.PORT, plan, rate=50, host=cluster.load_host, addresses=addresses
    )
    traffic.start()
    try:
        multi_host.wait_until(
            lambda: len(traffic.accepted) >= len(plan) // 4, 60, "a quarter accepted"
        )
        held = catch_mid_batch(client, cut, other)
        held_ingest_ids = ingest_ids_of(client, held)
        cut.host.cut()
        cut_at = time.time()
        cut.signal(signal.SIGCONT)
        held_ids = {e["message_id"] for e in held}
        multi_host.wait_until(
            lambda: not held_ids & {e["message_id"] for e in pending_of(client, cut)},
            60,
            f"{other.name} to claim the {len(held)} entries of the cut-off host",
        )
        multi_host.wait_until(
            lambda: not held_ids & {e["message_id"] for e in _all_pending(client)},
            60,
            f"{other.name} to settle them",
        )
        settled_after = time.time() - cut_at
        time.sleep(max(0.0, CUT_SECONDS - settled_after))
        cut.host.reconnect()
        back_at, back_offset = time.time(), len(cut.text())
        multi_host.wait_until(
            lambda: multi_host.alive(cut) and len(drain_rounds(cut.text(back_offset))) >= 2,
            30,
            f"{cut.name} to drain again after reconnecting",
        )
        traffic.wait(120)
    finally:
        traffic.stop()
    accepted = list(traffic.accepted)
    multi_host.wait_until(
        lambda: verify.settled(cluster.services, accepted), 90, "every delivery settled"
    )
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
        f" (claim idle {multi_host.CLAIM_IDLE_SECONDS:g} s)",
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
    assert multi_host.alive(cut)
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


def held_waits(cluster_services: multi_host.Services, ingest_ids: list[str]) -> list[float]:
    """Seconds from acceptance to settled (received_at to processed_at) of these deliveries."""
    with psycopg.connect(cluster_services.database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM processed_at - received_at)::float FROM webhook_events"
            " WHERE ingest_id = ANY(%s::uuid[]) AND processed_at IS NOT NULL",
            (ingest_ids,),
        ).fetchall()
    return sorted(seconds for (seconds,) in rows)
