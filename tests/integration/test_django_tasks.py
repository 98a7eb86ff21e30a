"""examples/django_tasks run from its own uwsgi.ini: a Django view queues a @spool task that the
spooler runs, and the @cron job registered through uwsgidecorators runs in the mule."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.server import Server

pytest.importorskip("django")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_tasks"


def test_django_example_spools_and_crons(tmp_path):
    project = tmp_path / "django_tasks"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("var", "__pycache__"))
    ini = project / "uwsgi.ini"
    ini.write_text(ini.read_text().replace("http = :8000", "http = 127.0.0.1:0"))
    server = Server([str(ini)], cwd=str(tmp_path))
    try:
        host, port = server.address()
        base = f"http://{host}:{port}"
        started = time.monotonic()
        with urllib.request.urlopen(urllib.request.Request(f"{base}/report/monthly", method="POST"), timeout=10) as r:
            assert r.status == 202
            queued = json.loads(r.read())
        assert time.monotonic() - started < 2 and queued["task"].startswith(str(project / "var" / "spool"))

        def status():
            with urllib.request.urlopen(f"{base}/status", timeout=10) as r:
                return json.loads(r.read())

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (status()["reports"] and status()["cron_runs"]):
            time.sleep(0.2)
        now = status()
        log = server.log()
    finally:
        server.stop()
    assert [r["report"] for r in now["reports"]] == ["monthly"]
    assert len(now["cron_runs"]) == 1  # once this minute, for the whole instance
    mule_pid = now["cron_runs"][0]["pid"]
    assert f"spawned uisge mule 1 (pid: {mule_pid})" in log  # the cron job ran in the mule
    assert f"spawned the uisge spooler on dir {project / 'var' / 'spool'} with pid {now['reports'][0]['pid']}" in log
    assert '[uwsgi-cron] command "find' in log
