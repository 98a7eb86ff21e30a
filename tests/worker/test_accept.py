"""worker/accept.py: accept4() on a real unix listener gives a non-blocking, close-on-exec descriptor of the
client's connection in one call, and says "would block" (EAGAIN) when nobody waits; EMFILE is logged by the
worker and the worker goes on (a real worker process, its descriptor limit lowered)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from uisge.worker.accept import ACCEPT4, FLAGS, get_errno

pytestmark = pytest.mark.skipif(ACCEPT4 is None, reason="libc has no accept4 (not Linux)")


def test_accept4_gives_a_nonblocking_cloexec_descriptor_or_eagain(tmp_path):
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX) as client:
        listener.bind(path)
        listener.listen(8)
        listener.setblocking(False)
        assert ACCEPT4(listener.fileno(), None, None, FLAGS) == -1
        assert get_errno() == errno.EAGAIN
        client.connect(path)
        client.settimeout(10)
        client.sendall(b"ping")
        fd = ACCEPT4(listener.fileno(), None, None, FLAGS)
        try:
            assert fd >= 0
            assert os.get_blocking(fd) is False
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert os.read(fd, 16) == b"ping"
            with pytest.raises(BlockingIOError):
                os.read(fd, 16)  # nothing more: it does not block
            os.write(fd, b"pong")
            assert client.recv(16) == b"pong"
        finally:
            os.close(fd)


def test_a_failed_accept_is_logged_and_the_worker_serves_on(tmp_path):
    """A real EMFILE on a unix listener (the descriptor limit lowered to what is open): the worker's accept says
    so with the errno's words and returns; once a descriptor is free, the waiting client is served."""
    script = textwrap.dedent(f"""
        import os, resource, socket
        from uisge.config.load import load
        from uisge.protocol.uwsgi import encode_packet
        from uisge.worker.connection import Listener
        from uisge.worker.loop import Worker
        from uisge.wsgi.environ import base_environ

        def application(env, start):
            start("200 OK", [("Content-Type", "text/plain")])
            return [b"served"]

        path = {str(tmp_path / "app.sock")!r}
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen(8)
        sock.setblocking(False)
        listener = Listener(sock, "uwsgi", path, base_environ("localhost", "0", False, False, None))
        worker = Worker(load(["--disable-logging"], first_index=0), [listener], [("", application)])
        log_r, log_w = os.pipe()
        worker.log.fd = worker.log.error_fd = log_w
        client = socket.socket(socket.AF_UNIX)
        client.connect(path)
        client.settimeout(10)
        client.sendall(encode_packet({{"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": ""}}))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        spare = os.open(os.devnull, os.O_RDONLY)  # the highest descriptor in use: no room above it
        resource.setrlimit(resource.RLIMIT_NOFILE, (spare + 1, hard))
        taken = []
        try:
            while True:
                taken.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        assert worker.pipeline.accept(listener) is False
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        import select
        print(os.read(log_r, 4096).decode().strip() if select.select([log_r], [], [], 5)[0] else "nothing logged")
        worker.pipeline.accept(listener)
        print(client.recv(4096).decode("latin-1").split("\\r\\n")[-1])
    """)
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    logged, answer = out.stdout.strip().splitlines()
    assert f"accept() on {tmp_path / 'app.sock'} failed: [Errno {errno.EMFILE}] Too many open files" in logged
    assert answer == "served"
