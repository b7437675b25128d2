"""HTTP load for a fixed time: wrk with post.lua when installed, else the asyncio loadgen.py."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import procs

LUA_SCRIPT = procs.BENCH_DIR / "post.lua"
LOADGEN = procs.BENCH_DIR / "loadgen.py"
WRK_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # connect, read, write errors and timeouts
    statuses: dict[int, int]

    @classmethod
    def from_output(cls, output: str) -> LoadResult:
        """Parse the "BENCH {json}" line that post.lua and loadgen.py print."""
        line = next((line for line in output.splitlines() if line.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError("the load generator printed no result:\n" + output[-2000:])
        fields = json.loads(line.removeprefix("BENCH "))
        fields["statuses"] = {int(k): v for k, v in fields["statuses"].items()}
        return cls(**fields)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def accepted(self) -> int:
        """Responses with a 2xx status."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def failed(self) -> int:
        """Non-2xx responses plus errors."""
        return self.requests - self.accepted + self.errors


def ratio_table(first: str, results: dict[str, LoadResult], base: str, short: str) -> str:
    """A markdown table of load results, each row's requests/s as a ratio to the `base` row's
    (`short` names it in the header)."""
    lines = [f"| {first} | requests/s | p99 | vs {short} |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {name} | {r.rps:,.0f} | {r.p99_ms:.1f} ms | {r.rps / results[base].rps:.2f}x |"
        for name, r in results.items()
    ]
    return "\n".join(lines)


def use_wrk() -> bool:
    """wrk when installed, unless ZI_BENCH_NO_WRK is set (to try the built-in client)."""
    return bool(shutil.which("wrk")) and not os.environ.get("ZI_BENCH_NO_WRK")


def tool() -> str:
    return "wrk" if use_wrk() else "loadgen.py (asyncio)"


def closed_loop(
    group: procs.Group,
    name: str,
    url: str,
    body_file: Path,
    seconds: int,
    connections: int,
    numbered: bool = False,
) -> LoadResult:
    """`connections` keep-alive connections posting `body_file` for `seconds`."""
    command, env = _closed_loop_command(url, body_file, seconds, connections, numbered)
    return LoadResult.from_output(group.run(name, command, env, timeout=seconds + 60))


def start_closed_loop(
    group: procs.Group,
    name: str,
    url: str,
    body_file: Path,
    seconds: int,
    connections: int,
    numbered: bool = False,
) -> procs.Proc:
    """closed_loop, started; read it with LoadResult.from_output(group.finish(...))."""
    return group.start(name, *_closed_loop_command(url, body_file, seconds, connections, numbered))


def _closed_loop_command(
    url: str, body_file: Path, seconds: int, connections: int, numbered: bool
) -> tuple[list[str], dict[str, str]]:
    if use_wrk():
        command = [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(LUA_SCRIPT),
            url,
        ]
    else:
        command = [
            sys.executable,
            str(LOADGEN),
            "--url",
            url,
            "--body-file",
            str(body_file),
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
            *(["--numbered"] if numbered else []),
        ]
    env = procs.env(BENCH_BODY_FILE=str(body_file), BENCH_NUMBERED="1" if numbered else "")
    return command, env


def start_steady_rate(
    group: procs.Group,
    name: str,
    url: str,
    rate: float,
    seconds: float,
    start_at: float,
    connections: int,
) -> procs.Proc:
    """loadgen.py at a steady rate (unique bodies), started; read it with LoadResult later."""
    command = [
        sys.executable,
        str(LOADGEN),
        "--url",
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--start-at",
        str(start_at),
        "--connections",
        str(connections),
    ]
    return group.start(name, command, procs.env())
