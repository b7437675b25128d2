"""What a replicated Redis costs the ingress: the same load against one primary with two
replicas and three sentinels (tests/fixtures/sentinel.py), reached by a plain URL or the
Sentinel one, without WAIT, with ZENOTI_INGEST_WAIT_REPLICAS=1, and with the primary's
`min-replicas-to-write 1` as well.

    python benchmarks/wait_replicas.py [--seconds 10]

Every Redis runs `appendonly yes`, `appendfsync everysec` (as benchmarks/appendfsync.py's
recommended row), on loopback: replication here costs a round trip of microseconds; across
hosts WAIT adds one network round trip to each request.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import http_load
import payloads
import procs
import servers
from phase_ingress import load_ours

from tests.fixtures import sentinel

CONNECTIONS = 64
RESULTS = Path(__file__).resolve().parent / "results"
# mode: (Sentinel URL?, WAIT_REPLICAS, the primary's min-replicas-to-write)
MODES = {
    "plain URL, no WAIT": (False, 0, 0),
    "Sentinel URL, no WAIT": (True, 0, 0),
    "Sentinel URL, WAIT_REPLICAS=1": (True, 1, 0),
    "Sentinel URL, WAIT_REPLICAS=1, min-replicas-to-write 1": (True, 1, 1),
}


def measure(
    group: procs.Group, redis_set: sentinel.SentinelRedis, mode: str, body: Path, seconds: int
) -> http_load.LoadResult:
    through_sentinels, wait, min_replicas = MODES[mode]
    primary = redis_set.primary_port()
    url = redis_set.url if through_sentinels else f"redis://127.0.0.1:{primary}/0"
    client = redis_set.client()
    client.config_set("min-replicas-to-write", min_replicas)
    web_port = procs.free_port()
    with group.scope():
        env = {**servers.ours_env(url, "", web_port), "ZENOTI_INGEST_WAIT_REPLICAS": str(wait)}
        server = servers.start_server(
            group, "ingress-wait", servers.ours_serve_command(web_port), env, web_port
        )
        load = load_ours(group, mode, server, body, seconds, CONNECTIONS, client)
    client.close()
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, procs.Group(Path(folder) / "logs") as group:
        body = Path(folder) / "started-body.json"
        body.write_bytes(payloads.started_body())
        redis_set = sentinel.SentinelRedis(Path(folder))
        try:
            redis_set.start()
            results = {m: measure(group, redis_set, m, body, args.seconds) for m in MODES}
        finally:
            redis_set.stop()
    table = http_load.ratio_table(
        "Redis (primary + 2 replicas, appendfsync everysec)", results, "plain URL, no WAIT",
        "plain",
    )  # fmt: skip
    print(table)
    (RESULTS / "wait_replicas.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
