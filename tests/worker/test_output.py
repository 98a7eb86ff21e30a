"""The output buffer over a real socketpair: partial sends, sendfile, would-block, a gone peer."""

import os
import socket

import pytest

from uisge.errors import ClientGone
from uisge.worker.output import Output


def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return a, b


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return data


def test_flush_says_when_the_socket_takes_no_more_and_keeps_the_rest_in_order():
    a, b = pair()
    out = Output(a.fileno())
    payload = [os.urandom(50_000), b"tail"]
    for piece in payload:
        out.push(piece)
    assert out.flush() is False and out.pending
    got = b""
    while out.pending:
        got += b.recv(65536)
        out.flush()
    got += read_exactly(b, 50_004 - len(got))
    assert got == b"".join(payload)


def test_files_go_out_with_sendfile(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(100_000))
    a, b = pair()
    out = Output(a.fileno())
    out.push(b"head:")
    with open(path, "rb") as fh:
        out.push_file(fh.fileno(), 10, 90_000)
        got = b""
        while not out.flush() or len(got) < 90_005:
            got += b.recv(65536)
    assert got == b"head:" + path.read_bytes()[10:90_010]


def test_a_gone_peer_is_client_gone():
    a, b = pair()
    b.close()
    out = Output(a.fileno())
    out.push(b"x" * 10)
    with pytest.raises(ClientGone):
        out.flush()
        out.push(b"y")
        out.flush()


def test_drain_gives_up_after_the_timeout_without_progress():
    a, b = pair()
    out = Output(a.fileno())
    out.push(b"x" * 1_000_000)
    with pytest.raises(ClientGone, match="socket-timeout"):
        out.drain(0.2)
