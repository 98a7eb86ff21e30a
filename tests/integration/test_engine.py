"""The worker engine with real processes and sockets: every WSGI app shape, Flask and Django streaming,
slow readers that must not stall the worker, uploads in bounded memory, paths as sent, refused
packets and chunk headers."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.integration.server import APPS, Server, read_response, recv_all
from uisge.protocol.uwsgi import encode_packet

SHAPES = str(APPS / "shapes.py")


def get(server: Server, path: str, version: str = "HTTP/1.1") -> tuple[int, dict, bytes]:
    with server.connect() as sock:
        sock.sendall(f"GET {path} {version}\r\nHost: x\r\n\r\n".encode())
        return read_response(sock)


@pytest.fixture(params=[1, 4], ids=["threads=1", "threads=4"])
def shapes(request, tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--socket", str(tmp_path / "u.sock"), "--wsgi-file", SHAPES,
                     "--threads", str(request.param), "--socket-timeout", "3"], cwd=str(tmp_path))
    yield server
    server.stop()


@pytest.mark.parametrize("path,body", [
    ("/generator", b"generated body"),
    ("/empty-first", b"after an empty chunk"),
    ("/class-iterable", b"class iterable"),
    ("/list", b"a list of parts"),
    ("/write", b"written with write()"),
    ("/write-then-yield", b"written, then yielded"),
    ("/buffers", b"6789abcdefciao"),
])
def test_every_app_shape_answers_200(shapes, path, body):
    status, headers, got = get(shapes, path)
    assert (status, got) == (200, body), shapes.log()
    if path == "/list":
        assert headers["content-length"] == str(len(body))  # a list's length is known up front


def test_file_wrapper_is_sent_whole(shapes):
    status, headers, body = get(shapes, "/file-wrapper")
    assert status == 200 and body == Path(SHAPES).read_bytes()
    assert headers["content-length"] == str(len(body))


def test_exc_info_replaces_the_head_before_it_is_sent(shapes):
    status, _, body = get(shapes, "/exc-info")
    assert (status, body) == (500, b"handled: caught before the head")


def test_an_error_after_the_head_cuts_the_response_and_the_worker_serves_on(shapes):
    with shapes.connect() as sock:
        sock.sendall(b"GET /error-after-head HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = recv_all(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK") and b"first" in raw
    assert not raw.endswith(b"0\r\n\r\n")  # no terminating chunk: the client knows it is cut
    assert shapes.wait_log("RuntimeError: after the head")
    assert get(shapes, "/generator")[0] == 200


def test_close_is_called_once_even_when_the_client_leaves(shapes):
    before = int(get(shapes, "/closes")[2])
    assert get(shapes, "/class-iterable")[0] == 200
    with shapes.connect() as sock:  # a client gone mid-response
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big?mb=16 HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1000)
    deadline = time.monotonic() + 10
    while int(get(shapes, "/closes")[2]) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(get(shapes, "/closes")[2]) == before + 2


def test_head_gets_no_body(shapes):
    with shapes.connect() as sock:
        sock.sendall(b"HEAD /generator HTTP/1.1\r\nHost: x\r\n\r\nGET /list HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n")
        raw = recv_all(sock)
    first, second = raw.split(b"HTTP/1.1 200 OK", 2)[1:]
    assert first.endswith(b"\r\n\r\n")  # the HEAD answer ends with its head
    assert second.endswith(b"\r\n\r\na list of parts")


def test_uwsgi_protocol_serves_a_generator(shapes):
    with shapes.connect("uwsgi") as sock:
        sock.sendall(encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/generator", "REQUEST_URI": "/generator",
                                    "SERVER_PROTOCOL": "HTTP/1.1"}))
        raw = recv_all(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"\r\n\r\ngenerated body")


# ------------------------------------------------------------------ slow readers
def _hold_unread(server: Server, path: str) -> socket.socket:
    """A client that asks for a big response and reads nothing (yet)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(server.address())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


@pytest.mark.parametrize("path", ["/big?mb=32", "/big?mb=32&list=1"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_client_that_does_not_read_does_not_stall_the_worker(tmp_path, path, threads):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", SHAPES, "--processes", "1",
                     "--threads", str(threads), "--socket-timeout", "30"], cwd=str(tmp_path))
    try:
        slow = _hold_unread(server, path)
        time.sleep(0.2)  # let the worker fill what the socket takes; it must then turn to others
        # threads=2: a second slow reader too, so both app threads would be stuck if writes blocked them
        slow2 = _hold_unread(server, path) if threads > 1 else None
        worst = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            assert get(server, "/generator")[0] == 200
            worst = max(worst, time.monotonic() - t0)
        assert worst < 1.0, f"a neighbour's GET waited {worst:.2f} s behind a slow reader"
        slow.settimeout(20)
        data = recv_all(slow, 20)  # the slow client still gets everything once it reads
        head, _, body = data.partition(b"\r\n\r\n")
        assert len(body) >= 32 << 20
        if slow2 is not None:
            slow2.close()
        slow.close()
    finally:
        server.stop()


def test_a_client_that_never_reads_is_cut_after_socket_timeout(tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", SHAPES, "--socket-timeout", "1"],
                    cwd=str(tmp_path))
    try:
        slow = _hold_unread(server, "/big?mb=64")
        assert server.wait_log("the client read nothing of its response for socket-timeout (1 s); cut", 10)
        assert get(server, "/generator")[0] == 200
        slow.close()
    finally:
        server.stop()


# ------------------------------------------------------------------ uploads in bounded memory
def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssPoller(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _rss_kib(self.pid))
            time.sleep(0.01)


def _upload(server: Server, size: int, chunked: bool) -> tuple[bytes, str]:
    block = os.urandom(1 << 16)
    digest = hashlib.sha256()
    with server.connect() as sock:
        sock.settimeout(120)
        if chunked:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = b"%x\r\n" % len(block) + block + b"\r\n"
            for _ in range(size // len(block)):
                sock.sendall(frame)
                digest.update(block)
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // len(block)):
                sock.sendall(block)
                digest.update(block)
        status, _, body = read_response(sock)
    assert status == 200
    return body, digest.hexdigest()


@pytest.mark.parametrize("size,chunked", [(1 << 30, False), (256 << 20, True)], ids=["1GiB-content-length",
                                                                                       "256MiB-chunked"])
def test_a_big_upload_is_read_whole_in_bounded_memory(tmp_path, size, chunked):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", SHAPES, "--processes", "1"], cwd=str(tmp_path))
    try:
        pid = int(get(server, "/pid")[2])
        before = _rss_kib(pid)
        poller = RssPoller(pid)
        poller.start()
        body, digest = _upload(server, size, chunked)
        poller.stop.set()
        poller.join()
        assert body.decode() == f"{size} {digest}"
        peak_mib = max(poller.peak, _rss_kib(pid)) / 1024
        assert peak_mib < 200, f"worker RSS peaked at {peak_mib:.0f} MiB"
        assert peak_mib - before / 1024 < 16, f"RSS grew {peak_mib - before / 1024:.1f} MiB during the upload"
    finally:
        server.stop()


# ------------------------------------------------------------------ paths and refusals
@pytest.mark.parametrize("target,path_info", [
    ("///keeping_slashes", "///keeping_slashes"),
    ("/a//b/", "/a//b/"),
    ("/a/./b/../c", "/a/c"),
    ("/../../etc/passwd", "/etc/passwd"),
    ("/a/%2e%2e/%2E%2E/b", "/b"),  # decoded first, then resolved (as uWSGI does): an encoded `..` cannot climb
])
def test_paths_reach_the_app_as_sent(shapes, target, path_info):
    status, _, body = get(shapes, target)
    assert (status, body.decode("latin-1")) == (200, "path " + path_info)


def test_a_long_chunk_extension_is_refused(shapes):
    raw = (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;" + b"e" * 70000 + b"\r\nhello\r\n0\r\n\r\n")
    with shapes.connect() as sock:
        sock.sendall(raw)
        status, _, body = read_response(sock)
    assert status == 400 and b"chunk header" in body


@pytest.mark.parametrize("packet,logged", [
    (encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, modifier1=5), "unavailable modifier requested: 5"),
    (b"\0\0\0\0", "datasize 0"),
])
def test_uwsgi_packets_uwsgi_refuses_close_the_connection(shapes, packet, logged):
    with shapes.connect("uwsgi") as sock:
        sock.sendall(packet)
        assert recv_all(sock) == b""
    assert shapes.wait_log(logged)


# ------------------------------------------------------------------ Flask and Django streaming
@pytest.fixture(scope="module")
def frameworks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frameworks")
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "frameworks.py"), "--threads", "2"],
                    cwd=str(tmp))
    yield server
    server.stop()


@pytest.mark.parametrize("path,expected", [
    ("/flask/stream", b"line 0\nline 1\nline 2\n"),
    ("/django/stream", b"part 0\npart 1\npart 2\n"),
    ("/django/file", (APPS / "frameworks.py").read_bytes()),
])
def test_framework_streaming_responses(frameworks, path, expected):
    status, headers, body = get(frameworks, path)
    assert (status, body) == (200, expected), frameworks.log()
    if path == "/django/file":
        assert headers["content-length"] == str(len(expected))


# ------------------------------------------------------------------ edges of the connection state machine
def test_pipelined_requests_with_bodies_in_one_send(shapes):
    one = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    two = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    with shapes.connect() as sock:
        sock.sendall(one + two + b"GET /list HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second, third = (read_response(sock) for _ in range(3))
    assert first[2].startswith(b"5 ") and second[2].startswith(b"3 ") and third[2] == b"a list of parts"


def test_a_body_sent_byte_by_byte_is_served_when_whole(shapes):
    body = os.urandom(300)
    with shapes.connect() as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n")
        for i in range(0, 300, 7):
            sock.sendall(body[i:i + 7])
        status, _, got = read_response(sock)
    assert status == 200 and got.decode() == f"300 {hashlib.sha256(body).hexdigest()}"


def test_a_stalled_body_gets_408_after_socket_timeout(shapes):
    with shapes.connect() as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        status, _, body = read_response(sock)
    assert status == 408 and b"socket-timeout" in body
    assert get(shapes, "/generator")[0] == 200


def test_a_client_gone_mid_upload_costs_nothing_else(shapes):
    with shapes.connect() as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100000)
    assert get(shapes, "/generator")[0] == 200
    assert "Traceback" not in shapes.log()


def test_write_app_still_complete_for_a_late_reader(tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "shapes.py"),
                     "--socket-timeout", "10"], cwd=str(tmp_path))
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server.address())
        sock.sendall(b"GET /write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.2)  # the response waits for a reader that takes its time
        status, _, body = read_response(sock)
        assert (status, body) == (200, b"written with write()")
        sock.close()
    finally:
        server.stop()


def test_head_of_a_file_wrapper_sends_no_body(shapes):
    with shapes.connect() as sock:
        sock.sendall(b"HEAD /file-wrapper HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = recv_all(sock)
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"200 OK" in head and f"Content-Length: {len(Path(SHAPES).read_bytes())}".encode() in head
    assert rest == b""


def test_many_slow_readers_with_threads_cost_buffers_not_threads(tmp_path):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", SHAPES, "--processes", "1", "--threads", "2"],
                    cwd=str(tmp_path))
    try:
        slow = [_hold_unread(server, "/big?mb=8") for _ in range(8)]  # 4x more than app threads
        time.sleep(0.3)
        t0 = time.monotonic()
        assert get(server, "/generator")[0] == 200
        assert time.monotonic() - t0 < 1.0
        for sock in slow:
            head, _, body = recv_all(sock, 20).partition(b"\r\n\r\n")
            assert len(body) >= 8 << 20
            sock.close()
    finally:
        server.stop()
