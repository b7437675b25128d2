"""`zenoti-ingest run`: one command brings everything up, and takes it all down again."""

from __future__ import annotations

import os
import signal
import subprocess

import psutil
import psycopg

from tests.fixtures import samples
from tests.fixtures.processes import CLI, Pipeline, wait_for
from tests.fixtures.services import settings_env


def test_run_serves_drains_and_stops_its_children_on_sigterm(pipeline: Pipeline):
    """The launcher migrates, starts ingress and worker, lands a sample, and SIGTERM stops
    every process it started."""
    settings = pipeline.settings
    env = {
        **os.environ,
        **settings_env(settings),
        "ZENOTI_INGEST_DATA_DIR": str(pipeline.log_dir / "data"),
    }
    launcher = subprocess.Popen(
        [*CLI, "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(pipeline.log_dir / "run.log", "wb"),  # noqa: SIM115
    )
    try:
        wait_for(pipeline._ready, timeout=60, what="the launcher's ingress")
        status, _ = pipeline.post(
            samples.repaired_body("appointment-started"), "Appointment.Started"
        )
        assert status == 202

        def appointments() -> int:
            with psycopg.connect(settings.database_url) as conn:
                return conn.execute("SELECT count(*) FROM appointments").fetchone()[0]

        wait_for(appointments, timeout=30, what="the sample's row")
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) >= 2
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(30) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == []
    finally:
        if launcher.poll() is None:
            launcher.kill()
