"""The uwsgi protocol on a unix socket, as nginx's uwsgi_pass sends it: vars as sent, body by
CONTENT_LENGTH, raw HTTP back with the request's SERVER_PROTOCOL, clear errors on bad packets."""

import json

from tests.integration.server import recv_all
from uisge.protocol.uwsgi import encode_packet

NGINX_VARS = {"QUERY_STRING": "a=1", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/plain",
              "CONTENT_LENGTH": "5", "REQUEST_URI": "/echo?a=1", "PATH_INFO": "/echo", "DOCUMENT_ROOT": "/srv",
              "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "https", "HTTPS": "on", "REMOTE_ADDR": "10.1.2.3",
              "REMOTE_PORT": "5555", "SERVER_PORT": "443", "SERVER_NAME": "example.com", "HTTP_HOST": "example.com",
              "UWSGI_FILE": "exec://cat /etc/passwd"}


def send(server, packet: bytes) -> bytes:
    with server.connect("uwsgi") as sock:
        sock.sendall(packet)
        return recv_all(sock)


def test_vars_as_sent_and_body(http_server):
    data = send(http_server, encode_packet(NGINX_VARS, b"hello"))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Date:" not in head
    env = json.loads(body)
    assert env["body"] == "hello" and env["REMOTE_ADDR"] == "10.1.2.3" and env["SERVER_NAME"] == "example.com"
    assert env["wsgi.url_scheme"] == "https" and env["PATH_INFO"] == "/echo" and env["SCRIPT_NAME"] == ""
    assert "UWSGI_FILE" not in env  # dynamic-app vars are ignored


def test_no_server_protocol_gives_http_10(http_server):
    data = send(http_server, encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/hello"}))
    assert data.startswith(b"HTTP/1.0 200 OK") and data.endswith(b"Hello World!")


def test_oversize_packet_gets_a_reply_and_a_log_line(http_server):
    packet = encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": "c" * 9000})
    data = send(http_server, packet)
    assert data.startswith(b"HTTP/1.0 431")
    assert http_server.wait_log("invalid request block size: 9") and "raise buffer-size" in http_server.log()


def test_malformed_packet_closes_only_its_connection(http_server):
    bad = bytes([0]) + (10).to_bytes(2, "little") + bytes([0]) + b"\xff\xff" + b"x" * 8
    assert send(http_server, bad).startswith(b"HTTP/1.0 400")
    assert send(http_server, encode_packet({"PATH_INFO": "/hello"})).endswith(b"Hello World!")


def test_http_on_uwsgi_socket_is_explained(http_server):
    data = send(http_server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert data.startswith(b"HTTP/1.0 400") and b"uwsgi-protocol socket" in data and b"http-socket" in data
