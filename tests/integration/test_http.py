"""HTTP/1.1 served by a real uisge process: keep-alive, pipelining, chunked both ways, 100-continue,
HEAD, 204, HTTP/1.0, limits, app errors, header validation. The app runs under wsgiref.validate."""

import json
import socket
import subprocess

from tests.integration.server import APPS, Server, read_response, recv_all


def request(server, raw: bytes):
    with server.connect() as sock:
        sock.sendall(raw)
        return read_response(sock)


def test_curl_gets_hello(http_server):
    host, port = http_server.address()
    out = subprocess.run(["curl", "-si", f"http://{host}:{port}/hello"], capture_output=True, text=True, timeout=10)
    assert out.stdout.startswith("HTTP/1.1 200 OK")
    assert "Date: " in out.stdout and "Content-Length: 12" in out.stdout
    assert out.stdout.endswith("Hello World!")
    assert http_server.wait_log("GET /hello => generated 12 bytes")
    assert "(HTTP/1.1 200)" in http_server.log()


def test_keep_alive_and_pipelining(http_server):
    with http_server.connect() as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"Hello World!"
        status, _, body = read_response(sock)
        env = json.loads(body)
        assert (status, env["PATH_INFO"], env["QUERY_STRING"]) == (200, "/echo", "q=1")


def test_chunked_request_is_dechunked(http_server):
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    status, _, body = request(http_server, raw)
    env = json.loads(body)
    assert (status, env["body"], env["CONTENT_LENGTH"], env["input_terminated"]) == (200, "hello world", "11", True)


def test_chunked_response_and_write_callable(http_server):
    status, headers, body = request(http_server, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert headers["transfer-encoding"] == "chunked" and body == b"part0\npart1\npart2\n"
    status, headers, body = request(http_server, b"GET /write HTTP/1.1\r\nHost: x\r\n\r\n")
    assert body == b"written;returned"


def test_expect_100_continue(http_server):
    with http_server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abcde")
        assert json.loads(read_response(sock)[2])["body"] == "abcde"


def test_head_and_204_have_no_body(http_server):
    with http_server.connect() as sock:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(sock)
    parts = data.split(b"HTTP/1.1 ")
    assert parts[1].startswith(b"200") and b"Content-Length: 12" in parts[1] and parts[1].endswith(b"\r\n\r\n")
    assert parts[2].startswith(b"204") and parts[2].endswith(b"\r\n\r\n")
    assert parts[3].startswith(b"200") and parts[3].endswith(b"Hello World!")
    assert b"Connection: close" in parts[3]


def test_http_10_closes(http_server):
    with http_server.connect() as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        data = recv_all(sock)
    assert data.startswith(b"HTTP/1.0 200 OK") and b"Connection: close" in data and data.endswith(b"part2\n")
    assert b"chunked" not in data


def test_limits_431_and_413(http_server):
    status, headers, _ = request(http_server, b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 9000 + b"\r\n\r\n")
    assert status == 431 and headers["connection"] == "close"
    status, headers, _ = request(http_server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
    assert status == 413


def test_app_exception_gives_500_and_worker_goes_on(http_server):
    status, headers, body = request(http_server, b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500 and headers["connection"] == "close"
    assert http_server.wait_log("RuntimeError: boom from the app")
    assert request(http_server, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_crlf_in_app_header_is_never_emitted(http_server):
    with http_server.connect() as sock:
        sock.sendall(b"GET /badheader HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 500") and b"evil" not in data
    assert http_server.wait_log("invalid response from the app") or http_server.wait_log("Set-Cookie")


def test_underscore_headers_are_dropped(http_server):
    raw = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX_Forwarded_For: 5.6.7.8\r\n\r\n"
    env = json.loads(request(http_server, raw)[2])
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"


def test_environ_shape(http_server):
    env = json.loads(request(http_server, b"GET /echo/%41/./b/../c?x=%20 HTTP/1.1\r\nHost: h:1\r\n"
                                          b"Content-Type: text/plain\r\n\r\n")[2])
    host, port = http_server.address()
    assert env["PATH_INFO"] == "/echo/A/c" and env["REQUEST_URI"] == "/echo/%41/./b/../c?x=%20"
    assert env["QUERY_STRING"] == "x=%20" and env["CONTENT_TYPE"] == "text/plain"
    assert env["SERVER_PORT"] == str(port) and env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SCRIPT_NAME"] == "" and env["wsgi.url_scheme"] == "http" and env["HTTP_HOST"] == "h:1"


def test_file_wrapper_uses_whole_file(http_server):
    status, headers, body = request(http_server, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and body == (APPS / "testapp.py").read_bytes()


def test_validator_found_nothing(http_server):
    for path in (b"/hello", b"/stream", b"/write", b"/echo", b"/file"):
        assert request(http_server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    assert "AssertionError" not in http_server.log()


def test_file_wrapper_is_sent_with_sendfile(tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py")], cwd=str(tmp_path))
    try:
        status, headers, body = request(server, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        assert body == (APPS / "testapp.py").read_bytes() and int(headers["content-length"]) == len(body)
    finally:
        server.stop()


def test_http_keepalive_requests_closes_after_the_nth_and_so_keepalive_arms_tcp_probes(tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py"),
                     "--http-keepalive-requests", "3", "--so-keepalive"], cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            for n in (1, 2, 3):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body = read_response(sock)
                assert (status, body) == (200, b"Hello World!")
                assert (headers.get("connection") == "close") == (n == 3), (n, headers)
                if n == 1:
                    assert _server_side_timer(server.address()[1], sock.getsockname()[1]) == 2  # keepalive
            assert recv_all(sock) == b""  # closed after the third answer
    finally:
        server.stop()


def _server_side_timer(server_port: int, client_port: int) -> int:
    """The timer field (`tr`) of the server's end of a connection in /proc/net/tcp: 2 is TCP keepalive."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[5].split(":")[0], 16)
    raise AssertionError("the server's end of the connection is not in /proc/net/tcp")
