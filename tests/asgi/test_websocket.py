"""asgi/websocket.py's pure parts: which Upgrade requests are websockets. (The session itself is driven over
real sockets in tests/integration/test_websocket.py.)"""

from uisge.asgi.websocket import is_websocket
from uisge.protocol.events import END
from uisge.protocol.http import HttpParser

HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_an_upgrade_head_is_marked_and_the_bytes_after_it_kept():
    parser = HttpParser(8192)
    events = parser.feed(HANDSHAKE + b"\x81\x80frame")
    head = events[0]
    assert head.upgrade and not head.keep_alive and is_websocket(head)
    assert parser.upgrade_rest == b"\x81\x80frame"
    assert parser.feed(b"GET / HTTP/1.1\r\n\r\n") == []  # the HTTP parser is done with this connection


def test_an_upgrade_head_split_over_feeds_and_one_with_a_body():
    parser = HttpParser(8192)
    assert parser.feed(HANDSHAKE[:40]) == []
    head = parser.feed(HANDSHAKE[40:])[0]
    assert head.upgrade and is_websocket(head) and parser.upgrade_rest == b""
    parser = HttpParser(8192)
    raw = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\nabcREST")
    events = parser.feed(raw)
    # llhttp hands over at the end of the head: what follows, a body included, is the new protocol's
    assert events[0].upgrade and events[1:] == [END] and parser.upgrade_rest == b"abcREST"


def test_other_upgrades_are_not_websockets():
    parser = HttpParser(8192)
    head = parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")[0]
    assert head.upgrade and not is_websocket(head)
    plain = HttpParser(8192).feed(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")[0]
    assert not plain.upgrade and not is_websocket(plain)  # no `Connection: Upgrade`: a plain request
