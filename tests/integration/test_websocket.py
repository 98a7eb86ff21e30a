"""Websockets of ASGI apps (issue 16): a real client (the `websockets` library, another implementation than the
server's wsproto) and raw sockets against a real server: echo, refusals, errors, size limits, backpressure
both ways, keepalive pings, 200 open websockets beside plain GETs, a reload's 1001, a client gone."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time

import pytest

from tests.integration.server import APPS, Server, read_response

websockets = pytest.importorskip("websockets")  # in the test extras: present whenever scripts/test ran
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

APP = str(APPS / "asgiapp.py")
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def serve(tmp_path, *extra: str) -> Server:
    return Server(["--master", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP, *extra], cwd=str(tmp_path),
                  env={"PYTHONUNBUFFERED": "1"})


def url(server: Server, path: str) -> str:
    host, port = server.address()
    return f"ws://{host}:{port}{path}"


def handshake(server: Server, path: str = "/echo", headers: bytes | None = None) -> tuple[socket.socket, bytes]:
    """A raw websocket handshake; returns the socket and the response head."""
    sock = server.connect()
    if headers is None:
        headers = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % KEY
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), headers))
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            break
        head += data
    return sock, head


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """A client frame (masked, with a zero mask key: the payload goes as it is)."""
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return bytes([0x80 | opcode]) + size + b"\0\0\0\0" + payload


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            more = sock.recv(n - len(data))
            if not more:
                raise EOFError
            data += more
        return data

    first, second = exactly(2)
    n = second & 0x7F
    if n == 126:
        n = struct.unpack("!H", exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exactly(8))[0]
    return first & 0x0F, exactly(n)


def vm(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def worker_pid(server: Server) -> int:
    children = open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read().split()
    return int(children[0])


def test_echo_50_text_50_binary_subprotocol_and_clean_close(tmp_path):
    server = serve(tmp_path)
    try:
        with connect(url(server, "/echo"), subprotocols=["chat", "superchat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-state"] == "started"  # lifespan state reaches the websocket scope
            for i in range(50):
                ws.send(f"text {i} é")
                assert ws.recv() == f"text {i} é"
                ws.send(os.urandom(7) + bytes([i]))
                assert ws.recv()[-1] == i
            ws.send("x" * 300_000)  # several frames on the wire, one message
            assert ws.recv() == "x" * 300_000
        assert ws.close_code == 1000
        assert server.wait_log("WS DISCONNECT /echo 1000")
        assert server.wait_log("GET /echo => generated")
        assert "(HTTP/1.1 101)" in server.log()
    finally:
        server.stop()


def test_fragments_joined_and_websockets_max_size(tmp_path):
    server = serve(tmp_path, "--websockets-max-size", "64")
    try:
        with connect(url(server, "/echo"), max_size=None) as ws:
            ws.send([b"a" * 20_000, b"b" * 20_000, b"c" * 20_000])  # one message in three fragments
            assert ws.recv() == b"a" * 20_000 + b"b" * 20_000 + b"c" * 20_000
            ws.send(b"z" * 100_000)
            with pytest.raises(ConnectionClosed):
                ws.recv()
        assert ws.close_code == 1009
        assert server.wait_log("WS DISCONNECT /echo 1009")
    finally:
        server.stop()


def test_refusals_and_bad_handshakes(tmp_path):
    server = serve(tmp_path)
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(url(server, "/deny"))
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as teapot:
            connect(url(server, "/teapot"))
        assert teapot.value.response.status_code == 418 and teapot.value.response.body == b"no websocket here"
        with pytest.raises(InvalidStatus) as failed:
            connect(url(server, "/error-before"))
        assert failed.value.response.status_code == 500
        assert server.wait_log("RuntimeError: refused by a bug")
        # not a websocket handshake: refused by the server, the app never sees it
        sock, head = handshake(server, "/echo", b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                                 b"Sec-WebSocket-Version: 13\r\n")
        sock.close()
        assert head.startswith(b"HTTP/1.1 400 "), head
        sock, head = handshake(server, "/echo", b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                                 b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 8\r\n" % KEY)
        sock.close()
        assert head.startswith(b"HTTP/1.1 426 ") and b"Sec-WebSocket-Version: 13" in head, head
        assert server.wait_log("websocket handshake refused (426)")
        with server.connect() as sock:  # plain HTTP still answered on the same worker
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
    finally:
        server.stop()


def test_app_close_code_and_app_error_after_accept(tmp_path):
    server = serve(tmp_path)
    try:
        with connect(url(server, "/echo")) as ws:
            ws.send("close")
            with pytest.raises(ConnectionClosed):
                ws.recv()
        assert ws.close_code == 4000 and ws.close_reason == "asked"
        with connect(url(server, "/error-after")) as ws:
            ws.send("boom")
            with pytest.raises(ConnectionClosed):
                ws.recv()
        assert ws.close_code == 1011
        assert server.wait_log("RuntimeError: the consumer failed")
    finally:
        server.stop()


def test_a_lazy_app_stops_the_reading_and_memory_stays_bounded(tmp_path):
    """/lazy reads nothing for 1 s: 300 messages of 64 KiB (19 MiB) wait in the client and the kernel, not in the
    worker (it reads no more once 16 messages wait for the app); then every one is answered, in order."""
    server = serve(tmp_path, "--processes", "1")
    try:
        pid = worker_pid(server)
        peak_before = vm(pid, "VmHWM")
        with connect(url(server, "/lazy"), max_size=None) as ws:
            sender = threading.Thread(target=lambda: [ws.send(bytes([i % 256]) * 65536) for i in range(300)])
            sender.start()
            answers = [ws.recv(timeout=30) for _ in range(300)]
            sender.join(30)
        assert answers == ["65536"] * 300
        grown = vm(pid, "VmHWM") - peak_before
        assert grown < 12 * 1024 * 1024, f"the worker's peak RSS grew by {grown >> 20} MiB for 19 MiB sent"
    finally:
        server.stop()


def test_a_client_that_does_not_read_costs_a_buffer_not_the_worker(tmp_path):
    """/push sends 300 messages of 64 KiB to a client that reads nothing yet: the app's send() waits on the
    output buffer, the worker's peak RSS stays bounded, and a GET on the same (only) worker is answered."""
    server = serve(tmp_path, "--processes", "1")
    try:
        pid = worker_pid(server)
        peak_before = vm(pid, "VmHWM")
        sock, head = handshake(server, "/push?300")
        assert head.startswith(b"HTTP/1.1 101 "), head
        with server.connect() as other:
            other.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(other)[0] == 200
        got = 0
        while True:
            opcode, payload = read_frame(sock)
            if opcode == 1:
                assert payload == b"done"
                break
            assert opcode == 2 and payload == b"p" * 65536
            got += 1
        sock.close()
        assert got == 300
        grown = vm(pid, "VmHWM") - peak_before
        assert grown < 12 * 1024 * 1024, f"the worker's peak RSS grew by {grown >> 20} MiB for 19 MiB pushed"
    finally:
        server.stop()


def test_keepalive_pings_cut_a_silent_client_and_keep_a_live_one(tmp_path):
    server = serve(tmp_path, "--websockets-ping-freq", "1", "--websockets-pong-tolerance", "1")
    try:
        with connect(url(server, "/echo")) as live:  # the websockets client answers pings by itself
            silent, head = handshake(server, "/echo")
            assert head.startswith(b"HTTP/1.1 101 ")
            opcode, _ = read_frame(silent)
            assert opcode == 9  # a ping, left unanswered
            assert server.wait_log("no pong within websockets-pong-tolerance (1 s); cut", 10)
            assert silent.recv(10) == b""  # cut
            silent.close()
            assert server.wait_log("WS DISCONNECT /echo 1006")
            live.send("still here")
            assert live.recv() == "still here"
        assert server.log().count("no pong within") == 1
    finally:
        server.stop()


def test_200_open_websockets_while_plain_gets_are_answered(tmp_path):
    """...and counted: the stats JSON (uwsgitop's source) and /metrics show them."""
    import json
    import urllib.request

    from tests.integration.nginx import free_port

    stats = free_port()
    server = serve(tmp_path, "--processes", "1", "--stats", f"127.0.0.1:{stats}", "--stats-http")
    socks = []
    try:
        for _ in range(200):
            sock, head = handshake(server, "/echo")
            assert head.startswith(b"HTTP/1.1 101 "), head
            socks.append(sock)
        for i in range(20):
            with server.connect() as sock:
                sock.settimeout(1.0)  # the bound: answered in under a second
                sock.sendall(f"GET /hello/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert read_response(sock)[0] == 200
        for i, sock in enumerate(socks):  # every one still open and echoing
            sock.sendall(frame(b"n%d" % i))
        for i, sock in enumerate(socks):
            assert read_frame(sock) == (1, b"n%d" % i)
        worker = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{stats}/", timeout=10).read())["workers"][0]
        assert (worker["websockets"], worker["websockets_total"]) == (200, 200)
        for sock in socks[:50]:
            sock.sendall(frame(b"", opcode=8))  # a close
            assert read_frame(sock)[0] == 8  # echoed, then the server closes
            assert sock.recv(10) == b""
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{stats}/metrics", timeout=10).read().decode()
        assert 'uisge_worker_websockets_open{worker_id="1"} 150' in metrics
        assert 'uisge_worker_websockets_total{worker_id="1"} 200' in metrics
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_a_reload_says_going_away_and_the_next_websocket_is_served(tmp_path):
    server = serve(tmp_path, "--processes", "1")
    try:
        with connect(url(server, "/echo")) as ws:
            ws.send("before")
            assert ws.recv() == "before"
            os.kill(server.proc.pid, signal.SIGHUP)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=20)
        assert ws.close_code == 1001
        assert server.wait_log("WS DISCONNECT /echo 1001")
        deadline = time.monotonic() + 20
        while True:
            try:
                with connect(url(server, "/echo"), open_timeout=5) as ws:
                    ws.send("after")
                    assert ws.recv() == "after"
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        server.stop()


def test_a_client_gone_mid_session_is_told_to_the_app(tmp_path):
    server = serve(tmp_path)
    try:
        sock, head = handshake(server, "/echo")
        assert head.startswith(b"HTTP/1.1 101 ")
        sock.sendall(frame(b"hi"))
        assert read_frame(sock) == (1, b"hi")
        sock.close()
        assert server.wait_log("WS DISCONNECT /echo 1006")
    finally:
        server.stop()


def test_frames_sent_before_the_accept_are_kept_and_a_client_gone_before_it_is_told(tmp_path):
    """/late accepts after 0.3 s: a frame sent with the handshake and one sent before the 101 arrives are both
    delivered after the accept; a client that leaves before the accept makes the app's accept raise OSError."""
    server = serve(tmp_path)
    try:
        sock = server.connect()
        sock.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % KEY + frame(b"early one"))
        sock.sendall(frame(b"early two"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert read_frame(sock) == (1, b"early one") and read_frame(sock) == (1, b"early two")
        sock.close()
        gone = server.connect()
        gone.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % KEY)
        gone.close()
        assert server.wait_log("WS LATE ACCEPT raised Disconnected")
        with server.connect() as other:  # nothing else disturbed
            other.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(other)[0] == 200
    finally:
        server.stop()
