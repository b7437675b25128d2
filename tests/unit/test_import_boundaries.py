"""The import directions are part of the design: ingress → core ← worker, the CLI composes them.

The graph is read from the source (every import statement, at any depth, of our four
packages), so a late import inside a function counts like any other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("zenoti_ingest", "ingress", "worker", "backfill", "cli")
# What each layer may import of ours, besides itself.
ALLOWED = {
    "zenoti_ingest": set(),
    "ingress": {"zenoti_ingest"},
    "worker": {"zenoti_ingest"},
    "backfill": {"zenoti_ingest"},
    "cli": {"zenoti_ingest", "ingress", "worker", "backfill"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def _imports(module: str) -> set[str]:
    """The modules of ours that `module` imports (a package's name when no module matches)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in MODULES else node.module for n in names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def test_the_graph_is_read():
    """The reader finds the edges we know exist (a test that would pass on an empty graph
    proves nothing)."""
    assert "zenoti_ingest.stream" in GRAPH["ingress.app"]
    assert "worker.hosting.celery_app" in GRAPH["worker.hosting.tasks"]
    assert "worker.operations.deadletters" in GRAPH["cli.dlq"]


@pytest.mark.parametrize("layer", PACKAGES)
def test_each_layer_imports_only_what_it_may(layer):
    """Core imports nothing of ours above it; ingress and worker only the core and
    themselves, never each other; the CLI may import anything and nothing imports it."""
    wrong = sorted(
        f"{module} → {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == layer
        for target in targets
        if target.split(".")[0] not in ALLOWED[layer] | {layer}
    )
    assert wrong == []


def test_no_import_cycles():
    """No module reaches itself through its imports (a package's own __init__ importing its
    modules is not a cycle: Python imports the parent package first anyway)."""
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(GRAPH.get(module, ())):
            if target in path:
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(GRAPH):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_ingress_never_imports_psycopg_or_worker():
    """Importing and building the ingress app leaves psycopg, Celery and the worker unloaded."""
    code = (
        "import sys\n"
        "from ingress import app\n"
        "from zenoti_ingest.settings import Settings\n"
        "app.create_app(Settings())\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('psycopg', 'worker', 'celery')"
        " or m == 'zenoti_ingest.db']\n"
        "print('LOADED:' + ','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "LOADED:"
