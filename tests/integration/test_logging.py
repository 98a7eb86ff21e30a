"""The server log with real processes: logto gets the banner, the request lines, and the app's print()
and tracebacks; log-json escapes what clients send; log-maxsize rotates; uWSGI's request line shape."""

from __future__ import annotations

import json
import socket
import time

from tests.integration.server import APPS, Server, read_response
from tests.integration.test_master import LOG_LINE, get, wait_for


def test_logto_collects_banner_requests_prints_and_tracebacks(tmp_path):
    log = tmp_path / "uisge.log"
    server = Server(["--master", "--processes", "2", "--http-socket", "127.0.0.1:0", "--wsgi-file",
                     str(APPS / "testapp.py"), "--logto", str(log)], cwd=str(tmp_path))
    try:
        text = lambda: log.read_text()  # noqa: E731
        assert wait_for(lambda: "spawned uisge worker 2" in text())
        port = int(text().split("bound to 127.0.0.1:")[1].split()[0])
        address = ("127.0.0.1", port)
        assert get(address, "/daemon")[0] == 200
        assert get(address, "/print")[0] == 200
        assert get(address, "/raise")[0] == 500
        assert wait_for(lambda: "boom from the app" in text() and "printed by the app" in text())
        assert "Traceback (most recent call last)" in text()
        assert wait_for(lambda: LOG_LINE.search(text()))
        assert server.log() == ""  # nothing left on the terminal
    finally:
        server.stop()


def test_log_json_escapes_what_the_client_sent(tmp_path):
    log = tmp_path / "u.log"
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py"), "--log-json",
                     "--logto", str(log)], cwd=str(tmp_path))
    try:
        port = int(wait_for(lambda: "bound to 127.0.0.1:" in log.read_text() and log.read_text())
                   .split("bound to 127.0.0.1:")[1].split()[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b'GET /x?q="quoted"\\ HTTP/1.1\r\nHost: h\r\nUser-Agent: evil"\\agent\r\n'
                         b'Connection: close\r\n\r\n')
            assert read_response(sock)[0] == 200
        line = wait_for(lambda: [l for l in log.read_text().splitlines() if l.startswith("{")])[0]
        entry = json.loads(line)
        assert entry["uri"] == '/x?q="quoted"\\' and entry["user_agent"] == 'evil"\\agent'
        assert entry["status"] == 200 and entry["method"] == "GET" and entry["duration_ms"] >= 0
    finally:
        server.stop()


def test_log_maxsize_rotates(tmp_path):
    log = tmp_path / "u.log"
    server = Server(["--master", "--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py"),
                     "--logto", str(log), "--log-maxsize", "2000"], cwd=str(tmp_path))
    try:
        port = int(wait_for(lambda: "bound to 127.0.0.1:" in log.read_text() and log.read_text())
                   .split("bound to 127.0.0.1:")[1].split()[0])
        for _ in range(30):
            get(("127.0.0.1", port), "/")
        assert wait_for(lambda: list(tmp_path.glob("u.log.*")), 5)
        time.sleep(1.5)
        get(("127.0.0.1", port), "/after-rotation")
        assert wait_for(lambda: "/after-rotation" in log.read_text(), 5)  # workers reopened the file too
    finally:
        server.stop()
