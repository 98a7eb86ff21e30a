"""Serving options a user sets in uwsgi.ini, run for real: log-format, add-header, chmod-socket,
mount with manage-script-name, threads, post-buffering spill."""

import json
import os
import stat

from tests.integration.server import APPS, Server, read_response, recv_all
from uisge.protocol.uwsgi import encode_packet


def test_ini_options_served_for_real(tmp_path):
    (tmp_path / "other.py").write_text(
        "def application(environ, start_response):\n"
        "    body = (environ['SCRIPT_NAME'] + '|' + environ['PATH_INFO']).encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n")
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(
        "[uwsgi]\n"
        f"http-socket = 127.0.0.1:0\nsocket = {tmp_path}/app.sock\nchmod-socket = 660\n"
        f"wsgi-file = {APPS}/testapp.py\nmount = /other={tmp_path}/other.py\nmanage-script-name = true\n"
        "add-header = X-Served-By: uisge\nthreads = 4\npost-buffering = 1024\n"
        'log-format = LOG %(method) %(uri) %(status) %(var.HTTP_X_TEST) %(nothing)\n')
    server = Server([str(ini)], cwd=str(tmp_path))
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "app.sock").st_mode) == 0o660
        with server.connect() as sock:
            sock.sendall(b"GET /other/x/y HTTP/1.1\r\nHost: a\r\nX-Test: t1\r\n\r\n")
            status, headers, body = read_response(sock)
            assert body == b"/other|/x/y" and headers["x-served-by"] == "uisge"
            big = b"z" * 5000  # above post-buffering: goes through a temporary file
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + big)
            assert json.loads(read_response(sock)[2])["body"] == big.decode()
        with server.connect("uwsgi") as sock:
            sock.sendall(encode_packet({"PATH_INFO": "/other/z", "REQUEST_METHOD": "GET"}))
            assert recv_all(sock).endswith(b"/other|/z")
        assert server.wait_log("LOG GET /other/x/y 200 t1 -")
    finally:
        server.stop()
