"""How long a scrape of `zenoti-ingest metrics` takes with 8 worker processes, through 10 restarts.

The counts live in one Redis hash per metric, whatever the number of processes that wrote
them, so a scrape should cost the same after restarts as before: this measures it. Four
`zenoti-ingest worker`s of 2 pool processes each (8 drain slots) and an ingress (granian, 2
workers) run under load; each round restarts one worker under a new node name (as a
re-created container would: the stream keeps a consumer per name) and, every other round,
the ingress; then the exporter is scraped over HTTP SCRAPES times.

    python benchmarks/scrape_time.py [--restarts 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from pathlib import Path

import http_load
import payloads
import procs
import redis
import servers
import stores

from tests.fixtures import exposition
from zenoti_ingest import metrics, stream

REDIS_DB = 13  # as ingress_memory.py: run one of them at a time
SCRAPES = 20
LOAD_SECONDS = 2
CONNECTIONS = 8
RESULTS = Path(__file__).resolve().parent / "results"


class Workers:
    """`zenoti-ingest worker`s, each restarted under a new node name."""

    def __init__(self, group: procs.Group, env: dict[str, str], count: int) -> None:
        self.group, self.env = group, env
        self.running = [self._start(number, 0) for number in range(count)]

    def _start(self, number: int, life: int) -> tuple[str, procs.Proc]:
        node = f"zi-bench-scrape-{number}-{life}@"
        proc = self.group.start(
            f"scrape-worker-{number}-{life}",
            [procs.executable("zenoti-ingest"), "worker"],
            {**self.env, "ZENOTI_INGEST_WORKER_NAME": node + "%h"},
        )
        return node, proc

    def restart(self, number: int, life: int) -> None:
        self.group.stop(self.running[number][1])
        self.running[number] = self._start(number, life)

    def wait_for_slots(self, client: redis.Redis) -> None:
        """Until the live workers hold every slot (a stopped one's lease may linger)."""
        pattern = f"{servers.OURS.redis_prefix}:drain-slot:*"
        wanted = len(self.running) * servers.OURS.worker_concurrency

        def held() -> bool:
            keys = [key.decode() for key in client.scan_iter(match=pattern)]
            return sum(any(node in key for node, _ in self.running) for key in keys) >= wanted

        watch = [proc for _, proc in self.running]
        procs.wait_until(held, timeout=120, what=f"{wanted} drain slots", watch=watch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="of 2 pool processes each")
    args = parser.parse_args()
    logs = RESULTS / "logs"
    with (  # the processes stop before their databases are emptied and dropped
        stores.redis_database(REDIS_DB) as client,
        stores.database("zi_bench_scrape") as database_url,
        procs.Group(logs) as group,
    ):
        redis_url = stores.redis_url(REDIS_DB)
        body_file = logs / "numbered-body.json"
        body_file.write_bytes(payloads.SUSTAINED.template())
        metrics_port = procs.free_port()
        env = {
            **servers.ours_env(redis_url, database_url),
            "ZENOTI_INGEST_METRICS_PORT": str(metrics_port),
        }
        command = [procs.executable("zenoti-ingest"), "metrics"]
        exporter = group.start("scrape-exporter", command, env)
        url = f"http://{servers.HOST}:{metrics_port}/metrics"
        procs.wait_until(
            lambda: exposition.answers(url), timeout=60, what="the exporter", watch=[exporter]
        )
        ingress = servers.start_ours(group, redis_url, database_url)
        workers = Workers(group, env, args.workers)
        workers.wait_for_slots(client)
        rows = [_round(group, client, url, ingress, body_file, 0, "none yet")]
        for restart in range(1, args.restarts + 1):
            number = (restart - 1) % args.workers
            workers.restart(number, restart)
            what = f"worker {number}"
            if restart % 2 == 0:
                group.stop(ingress.proc)
                ingress = servers.start_ours(group, redis_url, database_url)
                what += " and the ingress"
            workers.wait_for_slots(client)
            rows.append(_round(group, client, url, ingress, body_file, restart, what))
    lines = [
        f"Scrape of `zenoti-ingest metrics` over HTTP ({SCRAPES} per round), "
        f"{args.workers} workers x 2 pool processes under load, ingress granian x 2:",
        "",
        "| restarts | restarted | scrape p50 | scrape max | exporter's own read |"
        " metric hash fields | stream consumers |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    print("\n".join(lines))
    (RESULTS / "scrape-time.md").write_text("\n".join(lines) + "\n")


def _round(
    group: procs.Group,
    client: redis.Redis,
    url: str,
    ingress: servers.Server,
    body_file: Path,
    restarts: int,
    what: str,
) -> str:
    """Load for LOAD_SECONDS, then SCRAPES scrapes: the table's row."""
    http_load.closed_loop(
        group,
        name=f"scrape-load-{restarts}",
        url=ingress.webhook_url,
        body_file=body_file,
        seconds=LOAD_SECONDS,
        connections=CONNECTIONS,
        numbered=True,
    )
    took, own = [], []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        took.append((time.perf_counter() - started) * 1000)
        own += [
            float(line.split()[-1]) * 1000
            for line in text.splitlines()
            if line.startswith("zenoti_ingest_scrape_duration_seconds ")
        ]
    prefix = servers.OURS.redis_prefix
    fields = sum(client.hlen(metric.key(prefix)) for metric in metrics.RECORDED)
    keys = stream.Keys(prefix)
    consumers = len(client.xinfo_consumers(keys.deliveries, keys.group))
    procs.say(f"  after {restarts} restarts: scrape p50 {statistics.median(took):.1f} ms")
    return (
        f"| {restarts} | {what} | {statistics.median(took):.1f} ms | {max(took):.1f} ms | "
        f"{statistics.median(own):.1f} ms | {fields} | {consumers} |"
    )


if __name__ == "__main__":
    main()
