"""A small asyncio HTTP/1.1 load generator, for when wrk is missing and for steady-rate runs.

Closed loop (default): every connection posts --body-file as fast as it is answered, for
--seconds, as wrk does. Steady rate (--rate): request n leaves at --start-at + n / rate with a
body numbered n (unique delivery and appointment ids), so that the pipeline writes every one.
Prints one line "BENCH {json}", the same as post.lua under wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import payloads
import stats

Jobs = Callable[[], Awaitable[bytes | None]]  # the next body to post, or None: stop
FIRST_CLOSED_LOOP_NUMBER = 10**10  # as post.lua's first thread: apart from steady-rate numbers


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urllib.parse.urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/")

    def request(self, body: bytes) -> bytes:
        return (
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n"
            % (self.path.encode(), self.host.encode(), self.port, len(body))
        ) + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server closes the connection); the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers.get("connection") == "close"


async def connection(target: Target, jobs: Jobs, tally: Tally) -> None:
    """One keep-alive connection posting jobs in turn; reconnects after errors or a close."""
    reader = writer = None
    while (body := await jobs()) is not None:
        closing = True
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(target.host, target.port)
            started = time.perf_counter()
            writer.write(target.request(body))
            status, closing = await read_response(reader)
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[status] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            tally.errors += 1
        if closing and writer is not None:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


def closed_loop(body: bytes, seconds: float, numbered: bool) -> Jobs:
    """The body as it is, or (numbered) as a template filled with a new number each time."""
    deadline = time.monotonic() + seconds
    numbers = itertools.count(FIRST_CLOSED_LOOP_NUMBER)

    async def next_job() -> bytes | None:
        if time.monotonic() >= deadline:
            return None
        return payloads.numbered_body(body, next(numbers)) if numbered else body

    return next_job


def steady_rate(rate: float, seconds: float, start_at: float) -> Jobs:
    template = payloads.STEADY.template()
    total = int(rate * seconds)
    numbers = itertools.count()

    async def next_job() -> bytes | None:
        n = next(numbers)
        if n >= total:
            return None
        delay = start_at + n / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return payloads.numbered_body(template, n)

    return next_job


async def run(target: Target, jobs: Jobs, connections: int, started_at: float) -> dict:
    """Post until `jobs` runs out; the rate counts from `started_at` (epoch seconds)."""
    tally = Tally()
    await asyncio.gather(*(connection(target, jobs, tally) for _ in range(connections)))
    return {
        "requests": sum(tally.statuses.values()),
        "seconds": time.time() - started_at,
        **stats.summary_ms(tally.latencies),
        "errors": tally.errors,
        "statuses": {str(status): n for status, n in tally.statuses.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--body-file", help="closed loop: the body to post")
    parser.add_argument(
        "--numbered",
        action="store_true",
        help="closed loop: the body is a template to number (payloads.NUMBER)",
    )
    parser.add_argument("--rate", type=float, help="steady rate: requests per second")
    parser.add_argument(
        "--start-at",
        type=float,
        default=0.0,
        help="steady rate: epoch seconds when request 0 leaves",
    )
    args = parser.parse_args()
    started_at = args.start_at or time.time()
    if args.rate:
        jobs = steady_rate(args.rate, args.seconds, started_at)
    else:
        with open(args.body_file, "rb") as file:
            jobs = closed_loop(file.read(), args.seconds, args.numbered)
    result = asyncio.run(run(Target.from_url(args.url), jobs, args.connections, started_at))
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
