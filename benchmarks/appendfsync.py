"""What Redis persistence costs the ingress: our app under the same load against a Redis with
no persistence, with `appendfsync everysec` (the recommended setting) and with `always`.

    python benchmarks/appendfsync.py [--seconds 10]

Each Redis is a fresh redis-server on a free port with its files in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import http_load
import payloads
import procs
import redis
import servers
from phase_ingress import load_ours

from tests.fixtures.chaos.servers import pings
from zenoti_ingest import services

CONNECTIONS = 64
RESULTS = Path(__file__).resolve().parent / "results"
MODES = {
    "no persistence": ["--appendonly", "no", "--save", ""],
    "appendfsync everysec": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    "appendfsync always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
}


def measure(group: procs.Group, mode: str, body_file: Path, seconds: int) -> http_load.LoadResult:
    port, web_port = procs.free_port(), procs.free_port()
    with tempfile.TemporaryDirectory() as folder, group.scope():
        group.start(
            f"redis-{mode.replace(' ', '-')}",
            [
                str(services.embedded_binary("redis-server")),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                *MODES[mode],
            ],
            procs.env(),
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        procs.wait_until(lambda: pings(redis.Redis.from_url(url)), timeout=10, what=mode)
        server = servers.start_server(
            group,
            "ingress-fsync",
            servers.ours_serve_command(web_port),
            servers.ours_env(url, "", web_port),
            web_port,
        )
        return load_ours(group, mode, server, body_file, seconds, CONNECTIONS, client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with procs.Group(RESULTS / "logs") as group:
        body_file = RESULTS / "logs" / "started-body.json"
        body_file.write_bytes(payloads.started_body())
        results = {mode: measure(group, mode, body_file, args.seconds) for mode in MODES}
    table = http_load.ratio_table("Redis persistence", results, "appendfsync everysec", "everysec")
    print(table)
    (RESULTS / "appendfsync.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
