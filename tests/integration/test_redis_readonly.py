"""A plain REDIS_URL whose server is demoted to a replica (a managed Redis's failover, seen from
a connection made before it): READONLY closes the connection instead of keeping it, so the
ingress answers 503 and its next request connects again, wherever the endpoint points then."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fixtures import chaos, ports, sentinel
from tests.fixtures.chaos import servers
from zenoti_ingest import contract, errors, redis_clients, stream
from zenoti_ingest.settings import Settings


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[int]]:
    """Two bare redis-servers on free loopback ports."""
    found = [ports.free_port(), ports.free_port()]
    options = ["--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    processes = [
        subprocess.Popen(
            [sentinel.redis_server_binary(), "--port", str(port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port in found
    ]
    try:
        for port in found:
            chaos.wait_until(lambda p=port: servers.pings(_direct(p)), 10, f"redis on {port}", 0.01)
        yield found
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


def _direct(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)


def test_readonly_closes_the_connection_and_answers_503(two_servers: list[int]):
    primary, other = two_servers
    settings = Settings(redis_url=f"redis://127.0.0.1:{primary}/0", redis_prefix="zi_readonly")
    client = redis_clients.for_enqueue(settings)
    producer = stream.Producer(client, settings)
    producer.publish(contract.Delivery("0", 0, "", b"{}"))
    with contextlib.closing(_direct(primary)) as observer:
        observer.replicaof("127.0.0.1", other)  # demoted, our connection to it still open
        with pytest.raises(errors.EnqueueFailed) as failed:
            producer.publish(contract.Delivery("1", 1, "", b"{}"))
        assert isinstance(failed.value.__cause__, redis.ConnectionError)
        # The demoted server no longer has our connection: the observer is its only client.
        assert len(observer.client_list()) == 1
        observer.replicaof("no", "one")  # a primary again: the next request reconnects
    producer.publish(contract.Delivery("2", 2, "", b"{}"))
    assert client.xlen(stream.Keys.of(settings).deliveries) == 2


def test_a_round_trip_cut_short_gives_every_command_its_error(redis_url: str):
    """A pipeline whose replies never come (here a read timeout: a dropped connection or
    READONLY's reconnect end the same way) answers one error per command, so that callers
    pairing replies with their entries (ack, the metrics recorder) see each one failed."""
    client = redis.Redis.from_url(redis_url, socket_timeout=0.2)
    pipe = client.pipeline(transaction=False)
    pipe.set("zi_cut_short", "1")
    pipe.blpop(["zi_cut_short_never"], timeout=5)  # outlasts the socket timeout
    pipe.delete("zi_cut_short")
    replies = redis_clients.execute_each(pipe)
    assert len(replies) == 3
    assert all(isinstance(reply, redis.TimeoutError) for reply in replies)
    client.close()
