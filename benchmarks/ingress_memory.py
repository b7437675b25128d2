"""The ingress's resident memory over about a million requests: our app under wrk for
`--seconds` (default 120 s, about a million at this machine's rate), its process tree's RSS
sampled throughout, and every 2xx checked to be in Redis.

    python benchmarks/ingress_memory.py [--seconds 120]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import http_load
import payloads
import procs
import resources
import servers
import stores
from phase_ingress import settled, stream_length

REDIS_DB = 13
CONNECTIONS = 64
RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    args = parser.parse_args()
    logs = RESULTS / "logs"
    with procs.Group(logs) as group, stores.redis_database(REDIS_DB) as client:
        body_file = logs / "started-body.json"
        body_file.write_bytes(payloads.started_body())
        port, url = procs.free_port(), stores.redis_url(REDIS_DB)
        server = servers.start_server(
            group,
            "ingress-memory",
            servers.ours_serve_command(port),
            servers.ours_env(url, "", port),
            port,
        )
        with resources.UsageWatch([server.proc], interval=1.0) as watch:
            load = http_load.closed_loop(
                group,
                name="load-memory",
                url=server.webhook_url,
                body_file=body_file,
                seconds=args.seconds,
                connections=CONNECTIONS,
            )
        [usage] = watch.usage()
        enqueued = settled(stream_length, client)
    lines = [
        f"Ingress (granian, 2 workers) under wrk, {CONNECTIONS} connections, {args.seconds} s:",
        f"- {load.requests:,} requests, {load.rps:,.0f}/s, p99 {load.p99_ms:.1f} ms, "
        f"{load.failed} non-2xx/errors; {enqueued:,} in Redis for {load.accepted:,} 2xx",
        f"- RSS {usage.start / MB:,.0f} MB at start, {usage.settled / MB:,.0f} MB after a "
        f"quarter, {usage.end / MB:,.0f} MB at end ({usage.growth:+.1%} since the quarter; "
        f"peak {usage.peak / MB:,.0f} MB)",
    ]
    print("\n".join(lines))
    (RESULTS / "ingress-memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
