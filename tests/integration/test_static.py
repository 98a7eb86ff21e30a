"""static-map and friends with a real server: maps as the seeds write them, index files, types, caching
headers, 304, ranges, HEAD, precompressed files, new files, and every traversal attempt refused (over
HTTP and over the uwsgi protocol, where PATH_INFO arrives raw)."""

from __future__ import annotations

import gzip
import os
import socket
import time

import pytest

from tests.integration.server import APPS, Server, read_response, recv_all
from uisge.protocol.uwsgi import encode_packet


@pytest.fixture
def tree(tmp_path):
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: red }\n")
    (static / "app.js").write_text("console.log(1)\n")
    (static / "logo.svg").write_text("<svg/>")
    (static / "font.woff2").write_bytes(b"wOF2")
    (static / "data.json").write_text("{}")
    (static / "mod.wasm").write_bytes(b"\0asm")
    (static / "docs").mkdir()
    (static / "docs" / "index.html").write_text("<h1>docs</h1>")
    (static / "big.bin").write_bytes(os.urandom(300_000))
    (static / "skip.py").write_text("SECRET = 1")
    (static / "pre.css").write_text("x" * 1000)
    (static / "pre.css.gz").write_bytes(gzip.compress(b"x" * 1000))
    (static / "pre.css.br").write_bytes(b"brotli-bytes")
    (tmp_path / "static2").mkdir()
    (tmp_path / "static2" / "x.txt").write_text("sibling secret")
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "linked.txt").write_text("linked secret")
    os.symlink(tmp_path / "outside" / "linked.txt", static / "link.txt")
    os.symlink(tmp_path / "secret.txt", static / "escape.txt")
    return tmp_path


@pytest.fixture
def static_server(tree):
    server = Server(["--http-socket", "127.0.0.1:0", "--socket", str(tree / "u.sock"), "--wsgi-file",
                     str(APPS / "testapp.py"), "--static-map", f"/static/={tree}/static/",  # seed 002's trailing /
                     "--static-map", f"/favicon.ico={tree}/static/logo.svg", "--static-index", "index.html",
                     "--static-skip-ext", ".py", "--static-safe", str(tree / "outside"),
                     "--static-expires-type", "text/css=3600", "--static-gzip-all"], cwd=str(tree))
    yield server
    server.stop()


def request(server, path: str, method: str = "GET", headers: dict | None = None):
    sock = server.connect()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n".encode())
    status, hdrs, body = read_response(sock) if method != "HEAD" else _head_only(sock)
    sock.close()
    return status, hdrs, body


def _head_only(sock):
    data = recv_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


def test_files_types_and_index(static_server):
    status, h, body = request(static_server, "/static/css/site.css")
    assert status == 200 and body == b"body { color: red }\n"
    assert h["content-type"] == "text/css; charset=utf-8" and h["content-length"] == "20"
    assert "last-modified" in h and "etag" in h and "cache-control" in h and "expires" in h  # expires-type rule
    for path, ctype in (("/static/app.js", "text/javascript"), ("/static/logo.svg", "image/svg+xml"),
                        ("/static/font.woff2", "font/woff2"), ("/static/data.json", "application/json"),
                        ("/static/mod.wasm", "application/wasm")):
        assert request(static_server, path)[1]["content-type"].startswith(ctype), path
    assert request(static_server, "/static/docs/")[2] == b"<h1>docs</h1>"
    assert request(static_server, "/favicon.ico")[2] == b"<svg/>"  # a map to a single file
    assert request(static_server, "/static/nothing.css")[2] == b"Hello World!"  # missing: the app answers
    assert request(static_server, "/static/skip.py")[2] == b"Hello World!"  # static-skip-ext
    assert static_server.wait_log("GET /static/css/site.css => generated 20 bytes")  # static hits are logged


def test_conditional_range_head_and_big_files(static_server, tree):
    _, h, _ = request(static_server, "/static/css/site.css")
    assert request(static_server, "/static/css/site.css", headers={"If-None-Match": h["etag"]})[0] == 304
    assert request(static_server, "/static/css/site.css", headers={"If-Modified-Since": h["last-modified"]})[0] == 304
    assert request(static_server, "/static/css/site.css",
                   headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    data = (tree / "static" / "big.bin").read_bytes()
    status, h, body = request(static_server, "/static/big.bin")
    assert status == 200 and body == data  # sent with sendfile()
    status, h, body = request(static_server, "/static/big.bin", headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200] and h["content-range"] == f"bytes 100-199/{len(data)}"
    status, h, body = request(static_server, "/static/big.bin", headers={"Range": "bytes=-50"})
    assert status == 206 and body == data[-50:]
    status, h, body = request(static_server, "/static/big.bin", headers={"Range": "bytes=999999-"})
    assert status == 416 and h["content-range"] == f"bytes */{len(data)}"
    status, h, body = request(static_server, "/static/big.bin", "HEAD")
    assert status == 200 and h["content-length"] == str(len(data)) and body == b""


def test_precompressed_and_new_files(static_server, tree):
    status, h, body = request(static_server, "/static/pre.css", headers={"Accept-Encoding": "gzip"})
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == b"x" * 1000
    assert h["content-type"].startswith("text/css") and h["vary"] == "Accept-Encoding"
    assert request(static_server, "/static/pre.css", headers={"Accept-Encoding": "gzip, br"})[2] == b"brotli-bytes"
    assert request(static_server, "/static/pre.css")[2] == b"x" * 1000
    (tree / "static" / "late.txt").write_text("born after start-up")
    assert request(static_server, "/static/late.txt")[2] == b"born after start-up"


def test_repeated_requests_follow_the_file(static_server, tree):
    """The prebuilt answer for a small file: many requests on one keep-alive connection, then the file
    changed in place (same size), replaced by rename, and removed; each change is served at once."""
    css = tree / "static" / "css" / "site.css"
    sock = static_server.connect()

    def get(path: str, extra: str = "") -> tuple[int, dict, bytes]:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
        return read_response(sock)

    answers = [get("/static/css/site.css") for _ in range(20)]
    assert all(a[0] == 200 and a[2] == b"body { color: red }\n" for a in answers)
    assert len({tuple(sorted(a[1].items())) for a in answers if "date" not in a[1]}) <= 1
    assert "cache-control" in answers[-1][1] and answers[-1][1]["content-type"] == "text/css; charset=utf-8"
    assert get("/static/css/site.css", f"If-None-Match: {answers[-1][1]['etag']}\r\n")[0] == 304
    assert get("/static/css/site.css", "Range: bytes=0-3\r\n")[2] == b"body"
    css.write_text("body { color: blu }\n")  # same size, new mtime
    os.utime(css, ns=(1_000_000_000, 1_000_000_000))
    time.sleep(0.01)
    status, h, body = get("/static/css/site.css")
    assert body == b"body { color: blu }\n" and h["etag"] != answers[-1][1]["etag"]
    (tree / "new.css").write_text("replaced by rename\n")
    os.rename(tree / "new.css", css)
    time.sleep(0.01)
    assert get("/static/css/site.css")[2] == b"replaced by rename\n"
    css.unlink()
    time.sleep(0.01)
    assert get("/static/css/site.css")[2] == b"Hello World!"  # gone: the app answers
    sock.close()
    status, h, body = request(static_server, "/static/app.js", "HEAD")
    status2, h2, body2 = request(static_server, "/static/app.js", "HEAD")
    assert status == status2 == 200 and body == body2 == b"" and h2["content-length"] == "15"


@pytest.mark.parametrize("path", [
    "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt", "/static/%2e%2e%2fsecret.txt",
    "/static/css/../../secret.txt", "/static2/x.txt", "/static/../static2/x.txt", "/static/escape.txt",
    "/static/%00secret.txt", "/static//../secret.txt",
])
def test_traversal_over_http_is_refused(static_server, path):
    status, _, body = request(static_server, path)
    assert b"secret" not in body, (path, status, body)


@pytest.mark.parametrize("path_info", ["/static/../secret.txt", "/static/../static2/x.txt", "/static/escape.txt",
                                       "/static/css/../../secret.txt", "/static/\0secret.txt"])
def test_traversal_over_uwsgi_is_refused(static_server, tree, path_info):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(tree / "u.sock"))
    sock.sendall(encode_packet({"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "REQUEST_URI": path_info,
                                "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "t",
                                "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1"}))
    data = recv_all(sock)
    sock.close()
    assert b"secret" not in data and b"200 OK" in data  # the app answered instead


def test_symlink_to_a_static_safe_directory_is_served(static_server):
    assert request(static_server, "/static/link.txt")[2] == b"linked secret"
    request(static_server, "/static/escape.txt")  # a symlink out of the map, not to a safe place
    assert static_server.wait_log("security error: /static/escape.txt resolves to")


def test_static_map2_check_expires_uri_and_mime_file(tree):
    (tree / "docroot" / "assets").mkdir(parents=True)
    (tree / "docroot" / "assets" / "a.txt").write_text("map2 appends the whole path")
    (tree / "checked").mkdir()
    (tree / "checked" / "robots.txt").write_text("User-agent: *")
    (tree / "checked" / "thing.uisgetest").write_text("custom type")
    mime = tree / "mime.types"
    mime.write_text("application/x-uisge-test uisgetest\n")
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(APPS / "testapp.py"),
                     "--static-map2", f"/assets={tree}/docroot", "--static-check", str(tree / "checked"),
                     "--static-expires-uri", r"^/assets/.*\.txt$ 600", "--mime-file", str(mime)], cwd=str(tree))
    try:
        status, h, body = request(server, "/assets/a.txt")
        assert body == b"map2 appends the whole path" and h["cache-control"] == "max-age=600" and "expires" in h
        status, h, body = request(server, "/robots.txt")
        assert body == b"User-agent: *" and "expires" not in h
        assert request(server, "/thing.uisgetest")[1]["content-type"] == "application/x-uisge-test"
        assert request(server, "/not-there.txt")[2] == b"Hello World!"
    finally:
        server.stop()
