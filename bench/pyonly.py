"""The Python cost of one connection through the worker's pipeline with the system calls stubbed out
(accept, fcntl, read, write and close return at once), beside the calibration loop's Python work on
the same request. A profiling aid for the request path (not a test, not the benchmark):

    python bench/pyonly.py uwsgi|http [--log]
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httptools  # noqa: E402

from app import application  # noqa: E402
from harness import HTTP, UWSGI  # noqa: E402
from uisge.config.load import load  # noqa: E402
from uisge.worker import connection, output  # noqa: E402
from uisge.worker.connection import Listener  # noqa: E402
from uisge.worker.loop import Worker  # noqa: E402
from uisge.wsgi.environ import base_environ  # noqa: E402

N = 100_000


class FakeListenerSocket:
    """accept() hands out one fake descriptor per call, then says 'would block' once."""

    family = socket.AF_UNIX
    type = socket.SOCK_STREAM

    def __init__(self) -> None:
        self.turn = 0

    def _accept(self):
        self.turn ^= 1
        if not self.turn:
            raise BlockingIOError
        return 1000, ("127.0.0.1", 40000)

    def accept4(self, fd, addr, addrlen, flags) -> int:  # worker/accept.py's ACCEPT4, for unix listeners
        self.turn ^= 1
        return 1000 if self.turn else -1

    def fileno(self) -> int:
        return 999


class FakeOs:
    """The os functions the pipeline calls per connection, doing nothing."""

    def __init__(self, request: bytes) -> None:
        self.request = request

    def read(self, fd, n):
        return self.request

    def write(self, fd, data):
        return len(data)

    def writev(self, fd, parts):
        return sum(map(len, parts))

    def close(self, fd):
        pass

    def __getattr__(self, name):
        return getattr(os, name)


def floor_uwsgi(data: bytes, base: dict) -> None:
    size = data[1] | data[2] << 8
    text = data[4:4 + size].decode("latin-1")
    env = base.copy()
    pos = 0
    while pos < size:
        kl = data[4 + pos] | data[5 + pos] << 8
        pos += 2
        k = text[pos:pos + kl]
        pos += kl
        vl = data[4 + pos] | data[5 + pos] << 8
        pos += 2
        env[k] = text[pos:pos + vl]
        pos += vl
    respond(env)


class H:
    __slots__ = ("env",)

    def __init__(self, base):
        self.env = base.copy()

    def on_url(self, url):
        path, _, q = url.partition(b"?")
        self.env["PATH_INFO"] = path.decode("latin-1")
        self.env["QUERY_STRING"] = q.decode("latin-1")

    def on_header(self, n, v):
        self.env["HTTP_" + n.decode("latin-1").upper().replace("-", "_")] = v.decode("latin-1")

    def on_message_complete(self):
        pass


def floor_http(data: bytes, base: dict) -> None:
    h = H(base)
    p = httptools.HttpRequestParser(h)
    p.feed_data(data)
    h.env["REQUEST_METHOD"] = p.get_method().decode()
    respond(h.env)


def respond(env: dict) -> bytes:
    env["wsgi.input"] = io.BytesIO()
    status = []
    body = b"".join(application(env, lambda s, h, e=None: status.append((s, h))))
    s, hs = status[0]
    return (f"HTTP/1.1 {s}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n").encode("latin-1") + body


def main() -> None:
    proto = sys.argv[1] if len(sys.argv) > 1 else "uwsgi"
    request = UWSGI if proto == "uwsgi" else HTTP
    base = base_environ("localhost", "8080", False, False, None)
    opts = load([] if "--log" in sys.argv else ["--disable-logging"], first_index=0)
    fake = FakeListenerSocket()
    listener = Listener.__new__(Listener)
    for name, value in dict(sock=fake, fd=999, proto=proto, http=proto == "http", name="fake", base=base,
                            tcp=proto == "http", local=proto != "http", family=1, type=1, option="", address="",
                            path=None).items():
        setattr(listener, name, value)
    worker = Worker(opts, [listener], [("", application)])
    worker.log.fd = os.open(os.devnull, os.O_WRONLY)
    pipeline = worker.pipeline
    connection.os = output.os = FakeOs(request)
    connection.fcntl = lambda *a: 0
    connection.ACCEPT4 = fake.accept4
    connection.get_errno = lambda: errno.EAGAIN
    pipeline.watch = lambda conn, mask: setattr(conn, "mask", mask)  # no epoll set for fake descriptors
    floor = floor_uwsgi if proto == "uwsgi" else floor_http
    runs = [("uisge", lambda: pipeline.accept(listener)), ("floor", lambda: floor(request, base))]
    if "--keepalive" in sys.argv:  # one connection, a request per read
        connection.os.request = request.replace(b"Connection: close", b"Connection: keep-alive")
        pipeline.accept(listener)
        conn = pipeline.conns[1000]
        runs = [("uisge keep-alive", lambda: pipeline.readable(conn))]
    for name, fn in runs * 2:
        for _ in range(2000):
            fn()
        log = worker.log
        t0 = time.perf_counter()
        for i in range(N):
            fn()
            if not i & 63 and log.buffer:  # the loop flushes the log once per round
                log.flush()
        print(f"{proto} {name}: {(time.perf_counter() - t0) / N * 1e6:.2f} µs of Python per request")


if __name__ == "__main__":
    main()
