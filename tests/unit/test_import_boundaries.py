"""The ingress stays thin: it never loads psycopg, the database module, or the worker."""

import subprocess
import sys


def test_ingress_never_imports_psycopg_or_worker():
    """Importing and building the ingress app leaves psycopg and worker unloaded."""
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
