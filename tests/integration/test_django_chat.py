"""examples/django_chat run from its own uwsgi.ini behind a real nginx with the example's own locations: the
Channels consumer over nginx's proxy_pass (Upgrade), a view over uwsgi_pass; two websockets in one room
hear each other; a reload closes them with 1001."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.integration.nginx import Nginx, free_port
from tests.integration.server import Server

pytest.importorskip("django")
pytest.importorskip("channels")
websockets = pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_chat"


def test_channels_chat_behind_nginx(tmp_path):
    project = tmp_path / "django_chat"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    http_port, uwsgi_port = free_port(), free_port()
    ini = project / "uwsgi.ini"
    ini.write_text(ini.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{http_port}")
                   .replace("127.0.0.1:8001", f"127.0.0.1:{uwsgi_port}"))
    locations = "\n".join(re.findall(r"(    location .*?\n    \})", (project / "nginx.conf").read_text(), re.S))
    locations = (locations.replace("127.0.0.1:8000", f"127.0.0.1:{http_port}")
                 .replace("127.0.0.1:8001", f"127.0.0.1:{uwsgi_port}")
                 .replace("include uwsgi_params;", "include /etc/nginx/uwsgi_params;"))
    assert locations.count("location ") == 2
    server = Server([str(ini)], cwd=str(tmp_path), env={"PYTHONUNBUFFERED": "1"})
    nginx = None
    try:
        nginx = Nginx(tmp_path, locations)
        with urllib.request.urlopen(f"{nginx.url}/health/", timeout=10) as r:  # uwsgi_pass
            assert json.loads(r.read()) == {"ok": True}
        with urllib.request.urlopen(f"{nginx.url}/", timeout=10) as r:
            assert b"new WebSocket" in r.read()
        room = f"ws://127.0.0.1:{nginx.port}/ws/chat/lobby/"
        with connect(room) as alice, connect(room) as bob:  # proxy_pass with Upgrade
            alice.send(json.dumps({"message": "hello from alice"}))
            assert json.loads(bob.recv(timeout=10)) == {"message": "hello from alice"}
            assert json.loads(alice.recv(timeout=10)) == {"message": "hello from alice"}
            bob.send(json.dumps({"message": "hi alice"}))
            assert json.loads(alice.recv(timeout=10)) == {"message": "hi alice"}
            assert json.loads(bob.recv(timeout=10)) == {"message": "hi alice"}
            os.kill(server.proc.pid, signal.SIGHUP)  # a graceful reload: open websockets hear 1001
            for ws in (alice, bob):
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=20)
        assert alice.close_code == 1001 and bob.close_code == 1001, (server.log(), nginx.error_log())
        assert server.wait_log("GET /ws/chat/lobby/ => generated")
        assert "(HTTP/1.1 101)" in server.log()
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()
