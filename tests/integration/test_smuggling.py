"""Every request-smuggling and lax-parsing pattern of user-pain-points.md §2 against a real server:
each gets a 4xx/5xx with `Connection: close`, and the request hidden behind it never reaches the app."""

import pytest

from tests.integration.server import recv_all

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

PATTERNS = {
    "bare-LF (CVE-2019-16785)": b"GET / HTTP/1.1\nHost: a\nContent-Length: 0\n\n",
    "gzip, chunked (CVE-2019-16786)": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n"
                                      b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "vtab TE (CVE-2019-16789)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
    "duplicate CL (CVE-2019-16792)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\n",
    "ReDoS value (CVE-2020-5236)": b"GET / HTTP/1.1\r\nHost: a\r\nBad-header: " + b"x" * 5000 + b"\x10\r\n\r\n",
    "+CL (CVE-2022-24761)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +10\r\n\r\n",
    "0x chunk size": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nZ\r\n0\r\n\r\n",
    "NUL in chunk ext": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x00b\r\nX\r\n0\r\n\r\n",
    "invalid then pipelined (CVE-2024-49768)": b"GET /\x01 HTTP/1.1\r\n\r\n",
    "space before colon": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n",
    "TE chunked then gzip (CVE-2024-1135)": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                            b"Transfer-Encoding: gzip\r\n\r\n",
    "chunked, identity": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "chunked-false (CVE-2024-6827)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked-false\r\n\r\n",
    "xchunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "nbsp in name (gunicorn#3091)": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\xa0: chunked\r\n\r\n",
    "x85 in name": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length\x85: 5\r\n\r\n",
    "unicode ws around TE (gunicorn#3364)": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b\x0c\x1c\x1d\x1e"
                                            b"\x1f\x85\xa0chunked\x0b\x0c\r\n\r\n1\r\nZ\r\n0\r\n\r\n",
    "bare LF in value (gunicorn#3144)": b"GET / HTTP/1.1\r\nHost: a\r\nUseless:\n\n",
    "LF in chunk ext": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a\nX\r\nZ\r\n0\r\n\r\n",
    "CR in chunk ext": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a\rX\r\nZ\r\n0\r\n\r\n",
    "TE chunked + negative CL (gunicorn#1125)": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                               b"Content-Length: -2054\r\n\r\n",
    "lower-case method": b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    "method with #": b"GE#T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "HTTP/1.1x": b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
    "HTTP/2.0": b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "HTTP/0.9": b"GET / HTTP/0.9\r\nHost: a\r\n\r\n",
    "chunked on HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked, chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "authority-form GET": b"GET a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
    "* outside OPTIONS": b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    "obs-fold (uwsgi#2775)": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n",
    "duplicate CL differing (uwsgi#2775)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n",
    "CL overflow (uwsgi#2775)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "CL + TE (uwsgi#2560, waitress#464)": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "space in name": b"GET / HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n",
    "no colon": b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHeader\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "CONNECT": b"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n",
}


@pytest.mark.parametrize("name", list(PATTERNS))
def test_attack_pattern_rejected_and_nothing_smuggled(http_server, seen, name):
    with http_server.connect() as sock:
        sock.sendall(PATTERNS[name] + SMUGGLED)
        data = recv_all(sock, timeout=5)
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line[9:10] in (b"4", b"5"), f"{name}: got {status_line!r}"
    assert b"Connection: close" in data.split(b"\r\n\r\n", 1)[0]
    assert data.count(b"HTTP/1.1 ") == 1, f"{name}: more than one response: {data!r}"
    assert not seen.exists() or "/smuggled" not in seen.read_text()


def test_obs_text_never_crashes(http_server):
    with http_server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: \x80\xff\r\n\r\n")
        assert recv_all(sock, timeout=5).startswith(b"HTTP/1.1 200")
    with http_server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\xfe\r\n\r\n")
        sock.shutdown(1)
        assert recv_all(sock, timeout=5).startswith(b"HTTP/1.1 200")


def test_immediate_reset_does_not_leak_or_spin(http_server):
    import socket
    import struct

    for _ in range(200):
        s = http_server.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with http_server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert recv_all(sock).startswith(b"HTTP/1.1 200")
