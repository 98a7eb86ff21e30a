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


def request_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "[pid: " in line and "=> generated" in line]


def test_log_filters_log_what_they_match_with_disable_logging(tmp_path):
    log = tmp_path / "u.log"
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py"), "--logto", str(log),
                     "--disable-logging", "--log-4xx", "--log-5xx", "--log-slow", "300", "--log-big", "4000",
                     "--log-zero", "--log-sendfile"], cwd=str(tmp_path))
    try:
        port = int(wait_for(lambda: "bound to 127.0.0.1:" in log.read_text() and log.read_text())
                   .split("bound to 127.0.0.1:")[1].split()[0])
        address = ("127.0.0.1", port)
        for path, status in (("/", 200), ("/missing", 404), ("/raise", 500), ("/sleep?0.4", 200), ("/big", 200),
                             ("/nocontent", 204), ("/file", 200), ("/pid", 200)):
            assert get(address, path)[0] == status, path
        wanted = ["GET /missing ", "GET /raise ", "GET /sleep?0.4 ", "GET /big ", "GET /nocontent ", "GET /file "]
        assert wait_for(lambda: len(request_lines(log.read_text())) == len(wanted)), log.read_text()[-2000:]
        lines = request_lines(log.read_text())
        for line, what in zip(lines, wanted):
            assert what in line, (what, line)
        assert not any("GET / " in line or "GET /pid " in line for line in lines)  # nothing else
    finally:
        server.stop()


def test_log_date_prefixes_server_and_request_lines(tmp_path):
    import re

    for extra, pattern in ((["--log-date"], r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} - "),
                           (["--log-date", "%Y-%m-%dT%H:%M:%S"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d - ")):
        log = tmp_path / f"dated{len(extra)}.log"
        server = Server(["--master", "--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py"),
                         "--logto", str(log), *extra], cwd=str(tmp_path))
        try:
            text = wait_for(lambda: "spawned uisge worker 1" in log.read_text() and log.read_text())
            port = int(text.split("bound to 127.0.0.1:")[1].split()[0])
            assert get(("127.0.0.1", port), "/")[0] == 200
            assert wait_for(lambda: request_lines(log.read_text()))
            dated = re.compile(pattern)
            for line in ("spawned uisge worker 1", "=> generated 12 bytes"):
                found = next(l for l in log.read_text().splitlines() if line in l)
                assert dated.match(found), (extra, found)
        finally:
            server.stop()


def test_logto2_is_opened_as_the_user_privileges_drop_to(tmp_path_factory):
    import os
    import pwd
    import shutil
    import tempfile
    from pathlib import Path

    import pytest

    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs root (CI runs the suite as root)")
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="uisge-logto2-"))  # pytest's temp root is 0700: nobody can't enter
    os.chmod(base, 0o755)
    logs = base / "logs"
    logs.mkdir()
    os.chown(logs, nobody.pw_uid, nobody.pw_gid)  # writable by nobody only: root could open it anywhere
    app = base / "plain.py"
    app.write_text("def application(environ, start_response):\n"
                   "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [b'Hello World!']\n")
    app.chmod(0o644)
    log = logs / "app.log"
    server = Server(["--master", "--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--uid", "nobody",
                     "--gid", str(nobody.pw_gid), "--logto2", str(log)], cwd=str(base))
    try:
        address = server.address()  # the banner (before the drop) is on the terminal
        assert get(address, "/")[0] == 200
        assert wait_for(lambda: log.exists() and request_lines(log.read_text()))
        assert os.stat(log).st_uid == nobody.pw_uid  # created by the dropped user
        assert "spawned uisge worker 1" in log.read_text()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_log_this_request_logs_one_request_with_disable_logging_and_sendfile_ranges(tmp_path):
    """uwsgi.log_this_request() writes that request's line although the log is off; uwsgi.sendfile() sends a
    file (here from `pos`, `filesize` bytes of it) as the body."""
    (tmp_path / "data.txt").write_bytes(b"0123456789")
    (tmp_path / "app.py").write_text(
        "import uwsgi\n"
        "def application(env, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    if env['PATH_INFO'] == '/logme':\n"
        "        uwsgi.log_this_request()\n"
        "    if env['PATH_INFO'] == '/file':\n"
        "        return uwsgi.sendfile('data.txt', 0, 2, 5)\n"
        "    return [b'x']\n")
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", "app.py", "--disable-logging"],
                    cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            for path in ("/quiet", "/logme", "/file"):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                status, _, body = read_response(sock)
                assert status == 200
        assert body == b"23456"
        assert server.wait_log("GET /logme => generated 1 bytes")
    finally:
        server.stop()
    assert "GET /quiet" not in server.log() and "GET /file" not in server.log()
