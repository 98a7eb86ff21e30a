"""uWSGI's own test apps (from its 2.0.31 sdist, see the uwsgi_source fixture) served by uisge the way
uWSGI's docs run them. Issue 15 grows this into the whole compatibility suite."""

from __future__ import annotations

import pytest

from tests.integration.server import Server, read_response


def get(server: Server, path: str = "/") -> tuple[int, dict, bytes]:
    with server.connect() as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_response(sock)


@pytest.mark.parametrize("script,args,body", [
    # regression test for uWSGI#2056: a generator app calling start_response inside, uwsgi.workers() with apps
    ("tests/testworkers.py", ["--master", "--processes", "2"], None),
    # array, bytearray and bytes yielded: every buffer is a body piece
    ("t/python/testba.py", [], b"6789abcdefciao"),
    ("t/python/helloapp.py", [], b"Hello World"),
])
def test_uwsgi_test_app_answers_200(uwsgi_source, tmp_path, script, args, body):
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(uwsgi_source / script), *args],
                    cwd=str(tmp_path))
    try:
        status, _, got = get(server)
        assert status == 200, (got, server.log())
        if body is not None:
            assert got == body
    finally:
        server.stop()
