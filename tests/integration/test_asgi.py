"""ASGI apps served by the same master and workers (issue 16, first part): HTTP and the uwsgi protocol,
streamed bodies both ways, keep-alive, lifespan, errors, static-map before the app."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import signal
import time

from tests.conftest import run_uisge
from tests.integration.server import APPS, Server, read_response, recv_all
from uisge.protocol.uwsgi import encode_packet

APP = str(APPS / "asgiapp.py")


def test_hello_keepalive_lifespan_state_and_shutdown(tmp_path):
    server = Server(["--master", "--processes", "2", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP],
                    cwd=str(tmp_path), env={"PYTHONUNBUFFERED": "1"})
    try:
        assert server.wait_log("LIFESPAN STARTUP", 10)
        with server.connect() as sock:
            for i in range(100):  # one connection, 100 requests
                sock.sendall(f"GET /hello/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                status, headers, body = read_response(sock)
                assert status == 200 and body == f"GET /hello/{i} 1.1 started".encode(), body
        deadline = time.monotonic() + 10
        while server.log().count("LIFESPAN STARTUP") < 2:  # once per worker (the 2nd may still be starting)
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        assert server.log().count("LIFESPAN STARTUP") == 2
    finally:
        os.kill(server.proc.pid, signal.SIGTERM)
        server.proc.wait(20)
        server.stop()
    assert server.log().count("LIFESPAN SHUTDOWN") == 2


def test_pipelined_requests_arrive_while_one_is_running(tmp_path):
    """Three requests in one write: the 2nd and 3rd arrive while the 1st is awaited (the connection is not
    watched then); each is answered in order."""
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP], cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            sock.sendall(b"GET /sleep?0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            assert [read_response(sock)[2] for _ in range(3)] == [b"slept", b"GET /a 1.1 started",
                                                                    b"GET /b 1.1 started"]
    finally:
        server.stop()


def test_a_client_gone_while_its_request_runs_is_told_to_the_app(tmp_path):
    """http.disconnect: the app waits on receive() after the body; the client closes; the app hears of it (the
    connection is watched while the request runs), over HTTP and over the uwsgi protocol (nginx closes its
    upstream connection when the client goes)."""
    server = Server(["--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0", "--wsgi-file", APP],
                    cwd=str(tmp_path), env={"PYTHONUNBUFFERED": "1"})
    try:
        sock = server.connect()
        sock.sendall(b"GET /until-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        assert server.wait_log("UNTIL-DISCONNECT STARTED")
        with server.connect() as other:  # the worker is free meanwhile
            other.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(other)[0] == 200
        sock.close()
        assert server.wait_log("HTTP http.disconnect after the body", 10)
        sock = server.connect("uwsgi")
        sock.sendall(encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/until-disconnect", "REQUEST_URI":
                                    "/until-disconnect", "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
                                    "SERVER_NAME": "x", "SERVER_PORT": "80", "HTTP_HOST": "x"}))
        deadline = time.monotonic() + 10
        while server.log().count("UNTIL-DISCONNECT STARTED") < 2:
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.05)
        sock.close()
        deadline = time.monotonic() + 10
        while server.log().count("HTTP http.disconnect after the body") < 2:
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.05)
    finally:
        server.stop()


def test_a_pipelined_request_split_behind_a_running_one(tmp_path):
    """The next request's head arrives in two pieces while the first runs: kept, completed, answered."""
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP], cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            sock.sendall(b"GET /sleep?0.3 HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHo")
            status, _, body = read_response(sock)
            assert (status, body) == (200, b"slept")
            sock.sendall(b"st: x\r\n\r\n")
            assert read_response(sock)[2] == b"GET /second 1.1 started"
    finally:
        server.stop()


def test_request_bodies_are_streamed_to_receive_as_they_arrive(tmp_path):
    """The app runs at the head and takes the body as it arrives: it answers from the first piece while the
    client still holds most of it back; a 64 MiB upload (and a chunked one) are counted with the worker's peak
    RSS bounded; a client gone mid-body, a chunked body past limit-post and a stalled body each end with
    http.disconnect for the app (and a 413 / 408 for the client when it can still hear one)."""
    import socket as socketlib

    server = Server(["--master", "--processes", "1", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                     "--limit-post", str(80 << 20), "--socket-timeout", "2"], cwd=str(tmp_path),
                    env={"PYTHONUNBUFFERED": "1"})
    try:
        children = open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read().split()
        worker = int(children[0])

        def peak() -> int:
            for line in open(f"/proc/{worker}/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
            return 0

        with server.connect() as sock:  # 10 MiB announced, 1 MiB sent: the app answers already
            sock.sendall(b"POST /first-chunk HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 << 20)
                         + b"a" * (1 << 20))
            status, headers, body = read_response(sock)
            assert status == 200 and body.startswith(b"first ") and body.endswith(b" more True"), body
            assert headers.get("connection") == "close"  # the rest of the body was never read: not reusable
        before = peak()
        piece = b"b" * (1 << 20)
        with server.connect() as sock:
            sock.sendall(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
            for _ in range(64):
                sock.sendall(piece)
            status, _, body = read_response(sock)
            assert status == 200 and body.startswith(b"%d bytes in " % (64 << 20)), body
            sock.sendall(b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(16):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
            status, _, body = read_response(sock)
            assert status == 200 and body.startswith(b"%d bytes in " % (16 << 20)), body
        grown = peak() - before
        assert grown < 16 << 20, f"the worker's peak RSS grew by {grown >> 20} MiB for an 80 MiB upload"
        # a client gone mid-body
        sock = server.connect()
        sock.sendall(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"c" * 1000)
        sock.close()
        assert server.wait_log("COUNT DISCONNECT after", 10)
        # a chunked body past limit-post: 413, and the app is told
        with server.connect() as sock:
            sock.sendall(b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(90):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading and closed
            try:
                status, _, _ = read_response(sock)
            except (ConnectionResetError, socketlib.timeout):
                status = 0
        assert server.wait_log("stopped short (413 request body larger than limit-post", 10)
        # a stalled body: 408 after socket-timeout
        with server.connect() as sock:
            sock.sendall(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            sock.settimeout(15)
            status, _, _ = read_response(sock)
            assert status == 408
        assert server.wait_log("no body bytes for socket-timeout (2 s)")
    finally:
        server.stop()


def test_streamed_post_echo_and_streamed_response(tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--post-buffering", "65536"],
                    cwd=str(tmp_path))
    try:
        data = os.urandom(5 * 1024 * 1024)
        with server.connect() as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
            status, headers, body = read_response(sock)
            assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(sock)
            assert status == 200 and headers.get("transfer-encoding") == "chunked" and body == b"one two three"
    finally:
        server.stop()


def test_uwsgi_protocol_app_error_and_concurrency(tmp_path):
    server = Server(["--socket", "127.0.0.1:0", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP],
                    cwd=str(tmp_path))
    try:
        with server.connect("uwsgi") as sock:
            sock.sendall(encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/via-nginx", "REQUEST_URI": "/via-nginx",
                                        "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "x",
                                        "SERVER_PORT": "80", "REMOTE_ADDR": "10.0.0.1", "REMOTE_PORT": "5000",
                                        "HTTP_HOST": "x"}))
            raw = recv_all(sock)
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"GET /via-nginx 1.1 started"), raw
        with server.connect() as sock:
            sock.sendall(b"GET /error HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_response(sock)
        assert status == 500 and server.wait_log("RuntimeError: the view failed")

        def slow() -> float:  # 20 requests sleeping 0.5 s each, on one worker without threads
            started = time.monotonic()
            with server.connect() as sock:
                sock.sendall(b"GET /sleep?0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock)[2] == b"slept"
            return time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            took = max(pool.map(lambda _: slow(), range(20)))
        assert took < 2.5, took  # awaited side by side, not one after another (10 s)
    finally:
        server.stop()


def test_static_map_answers_before_the_app(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.css").write_text("body{}")
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--static-map",
                     f"/static={tmp_path / 'static'}"], cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            sock.sendall(b"GET /static/a.css HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(sock)
            assert status == 200 and body == b"body{}" and headers["content-type"].startswith("text/css")
            sock.sendall(b"GET /app HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[2] == b"GET /app 1.1 started"
    finally:
        server.stop()


def test_lifespan_startup_failure_stops_with_the_apps_message(tmp_path):
    result = run_uisge("--master", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP, cwd=tmp_path,
                       env={"ASGI_FAIL_STARTUP": "1"})
    assert result.returncode == 22
    assert "the app's lifespan startup failed: no database" in result.stderr


def test_max_requests_recycles_an_asgi_worker_without_losing_a_request(tmp_path):
    server = Server(["--master", "--processes", "1", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                     "--max-requests", "10", "--min-worker-lifetime", "0"], cwd=str(tmp_path),
                    env={"PYTHONUNBUFFERED": "1"})
    try:
        for i in range(30):
            with server.connect() as sock:
                sock.sendall(f"GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert read_response(sock)[0] == 200
        assert server.wait_log("10 requests reached max-requests (10)")
        deadline = time.monotonic() + 10
        while len(set(re.findall(r"LIFESPAN STARTUP (\d+)", server.log()))) < 2:  # a new worker took over
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.05)
    finally:
        server.stop()


def test_interface_asgi_serves_an_app_the_check_cannot_see(tmp_path):
    (tmp_path / "hidden.py").write_text(
        "async def inner(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'served as ASGI'})\n"
        "def application(scope, receive, send):\n    return inner(scope, receive, send)\n")
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(tmp_path / "hidden.py"), "--interface",
                     "asgi"], cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[::2] == (200, b"served as ASGI")
    finally:
        server.stop()


def test_a_mix_of_wsgi_and_asgi_apps_is_refused(tmp_path):
    (tmp_path / "w.py").write_text("def application(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
    result = run_uisge("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--mount", f"/w={tmp_path / 'w.py'}",
                       cwd=tmp_path)
    assert result.returncode == 22 and "mix WSGI and ASGI" in result.stderr


def test_harakiri_cancels_a_stuck_coroutine_and_the_worker_goes_on(tmp_path):
    """`await asyncio.sleep(30)` under harakiri 2: a 504, the coroutine's await chain in the log, and the
    same worker (one process) answers the requests around it, before and after."""
    server = Server(["--master", "--processes", "1", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                     "--harakiri", "2"], cwd=str(tmp_path))
    try:
        with server.connect() as stuck:
            stuck.sendall(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
            with server.connect() as other:  # answered while /stuck waits, by the same worker
                other.sendall(b"GET /during HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(other)[0] == 200
            stuck.settimeout(15)
            status, _, body = read_response(stuck)
        assert status == 504 and b"harakiri (2 s)" in body
        assert server.wait_log("GET /stuck has run for")  # (the log arrives through the master, a moment later)
        log = server.log()
        assert "HARAKIRI ON WORKER 1" in log, log[-3000:]
        assert "await asyncio.sleep(30)" in log and "in application" in log  # the await chain, outermost first
        assert server.wait_log("HARAKIRI of a request on worker 1")
        with server.connect() as after:
            after.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(after)[0] == 200
        assert "spawned uisge worker 1" in log and log.count("spawned uisge worker") == 1  # never respawned
    finally:
        server.stop()


def test_harakiri_kills_a_worker_whose_loop_is_blocked(tmp_path):
    """`time.sleep(30)` in an async view blocks the loop: nothing can be cancelled, so the watchdog logs the
    loop thread's stack, answers 504 and the worker is killed and respawned."""
    server = Server(["--master", "--processes", "1", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                     "--harakiri", "2"], cwd=str(tmp_path))
    try:
        with server.connect() as sock:
            sock.settimeout(15)
            sock.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(sock)
        assert status == 504
        assert server.wait_log("time.sleep(30)")  # (the log arrives through the master, a moment later)
        log = server.log()
        assert "the asyncio loop has not run for" in log and "blocked by synchronous code in 127.0.0.1 GET /block" in log
        deadline = time.monotonic() + 20
        while server.log().count("spawned uisge worker") < 2:
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.05)
        with server.connect() as sock:
            sock.settimeout(15)
            sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
    finally:
        server.stop()

