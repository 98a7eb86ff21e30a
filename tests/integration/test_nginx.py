"""A real nginx in front of a real uisge, as seeds 001/002 deploy it: `uwsgi_pass` to a unix socket and
to a TCP port, with `include uwsgi_params`. curl and Python clients talk to nginx only."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import subprocess

import pytest

from tests.integration.nginx import Nginx, require_tool
from tests.integration.server import APPS, Server


@pytest.fixture(params=["unix", "tcp"])
def behind_nginx(request, tmp_path, seen):
    if request.param == "unix":
        address = str(tmp_path / "app.sock")
        args = ["--socket", address, "--chmod-socket", "660"]
    else:
        args = ["--socket", "127.0.0.1:0"]
    server = Server([*args, "--wsgi-file", str(APPS / "testapp.py")], cwd=str(tmp_path),
                    env={"UISGE_TEST_SEEN": str(seen), "UISGE_TEST_VALIDATE": "1"})
    if request.param == "unix":
        upstream = f"unix:{address}"
    else:
        host, port = server.address("uwsgi")
        upstream = f"{host}:{port}"
    nginx = Nginx.uwsgi_pass(tmp_path, upstream)
    yield nginx, server
    nginx.stop()
    server.stop()


def request(nginx: Nginx, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_curl_gets_the_app_through_nginx(behind_nginx):
    nginx, server = behind_nginx
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "-i", f"{nginx.url}/?x=1"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 200"), out.stdout
    assert "Content-Type: text/plain" in out.stdout
    assert out.stdout.endswith("Hello World!")
    assert server.wait_log("GET /?x=1")  # the request log line names the request as nginx relayed it


def test_environ_is_what_nginx_sent(behind_nginx):
    nginx, _ = behind_nginx
    resp, data = request(nginx, "POST", "/echo/caf%C3%A9?a=1&b=2", body=b"hello nginx",
                         headers={"Content-Type": "text/plain", "X-Custom": "yes", "Host": "example.test"})
    assert resp.status == 200
    env = json.loads(data)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["REQUEST_URI"] == "/echo/caf%C3%A9?a=1&b=2"
    assert env["PATH_INFO"] == "/echo/caf\xc3\xa9"  # nginx decodes $document_uri; WSGI strings are latin-1
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "11"
    assert env["body"] == "hello nginx"
    assert env["HTTP_X_CUSTOM"] == "yes"
    assert env["HTTP_HOST"] == "example.test"
    assert env["SERVER_NAME"] == ""  # nginx's $server_name, empty with no server_name: as nginx sends it
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["SCRIPT_NAME"] == ""


def test_streamed_and_write_responses_arrive_whole(behind_nginx):
    nginx, _ = behind_nginx
    resp, data = request(nginx, "GET", "/stream")
    assert resp.status == 200 and data == b"part0\npart1\npart2\n"
    resp, data = request(nginx, "GET", "/write")
    assert resp.status == 200 and data == b"written;returned"


def test_head_204_and_app_errors_pass_through(behind_nginx):
    nginx, server = behind_nginx
    resp, data = request(nginx, "HEAD", "/")
    assert resp.status == 200 and data == b""
    resp, data = request(nginx, "GET", "/nocontent")
    assert resp.status == 204 and data == b""
    resp, data = request(nginx, "GET", "/raise")
    assert resp.status == 500
    assert server.wait_log("boom from the app")
    resp, data = request(nginx, "GET", "/")  # the worker goes on
    assert resp.status == 200 and data == b"Hello World!"


def test_large_body_through_nginx(behind_nginx):
    nginx, _ = behind_nginx
    body = bytes(range(256)) * 4096  # 1 MiB: nginx buffers it to a temp file, then streams it to us
    resp, data = request(nginx, "POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 200
    env = json.loads(data)
    assert env["CONTENT_LENGTH"] == str(len(body))
    assert env["body"].encode("latin-1") == body


def test_concurrent_requests_all_answered(behind_nginx):
    nginx, _ = behind_nginx

    def one(i: int) -> tuple[int, bytes]:
        resp, data = request(nginx, "GET", f"/?n={i}")
        return resp.status, data

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(300)))
    assert results == [(200, b"Hello World!")] * 300
    assert "upstream" not in nginx.error_log()  # no "upstream prematurely closed" or similar


def test_wrong_protocol_either_way_gets_a_hint_in_the_log(tmp_path):
    """The classic 502s: nginx's uwsgi_pass aimed at an http-socket, and proxy_pass aimed at a socket."""
    server = Server(["--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0", "--wsgi-file",
                     str(APPS / "testapp.py")], cwd=str(tmp_path))
    try:
        host, port = server.address("HTTP")
        uhost, uport = server.address("uwsgi")
        wrong = Nginx(tmp_path, f"""        location /u {{
            include /etc/nginx/uwsgi_params;
            uwsgi_pass {host}:{port};
        }}
        location /h {{
            proxy_pass http://{uhost}:{uport};
        }}""")
        try:
            assert request(wrong, "GET", "/u")[0].status in (400, 502)  # nginx relays our 400
            assert server.wait_log("a uwsgi-protocol packet arrived: point nginx's uwsgi_pass at a `socket =`")
            assert request(wrong, "GET", "/h")[0].status in (400, 502)
            assert server.wait_log("but an HTTP request arrived: point nginx's uwsgi_pass at it")
        finally:
            wrong.stop()
    finally:
        server.stop()
