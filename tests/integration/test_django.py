"""A real Django project (made by `django-admin startproject`, as seed 000 does) served by uisge:
straight over HTTP with `chdir` + `wsgi-file` (seed 000's ini), and behind a real nginx with
`module = mysite.wsgi:application` over a unix socket (seed 001); its `asgi.py` with an async view, both ways."""

from __future__ import annotations

import http.client
import subprocess
import sys

import pytest

from tests.integration.nginx import Nginx, require_tool
from tests.integration.server import Server

django = pytest.importorskip("django", reason="Django is in the [test] extras that scripts/test installs")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("django")
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)], check=True, timeout=60)
    return root


def get(port: int, path: str) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def test_seed000_ini_serves_django(project, tmp_path):
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"""[uwsgi]
project = mysite
base = {project}
http-socket = 127.0.0.1:0   # seed 000 uses http = :8000; port 0 keeps tests apart
chdir = %(base)
wsgi-file = %(project)/wsgi.py
processes = 1
""")
    server = Server([str(ini)], cwd=str(tmp_path))
    try:
        _host, port = server.address("HTTP")
        curl = require_tool("curl")
        out = subprocess.run([curl, "-sS", f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=20)
        assert "The install worked successfully" in out.stdout, out.stdout[:500] + server.log()
        status, headers, _ = get(port, "/admin/")
        assert status == 302 and headers["Location"] == "/admin/login/?next=/admin/"
        status, headers, body = get(port, "/admin/login/")
        assert status == 200, server.log()
        assert "Django administration" in body
        assert "csrftoken=" in headers.get("Set-Cookie", "")
        assert server.wait_log("GET /admin/login/ => generated")
    finally:
        server.stop()


def test_django_module_behind_nginx_unix_socket(project, tmp_path):
    sock = tmp_path / "mysite.sock"
    server = Server(["--socket", str(sock), "--chmod-socket", "660", "--chdir", str(project), "--module",
                     "mysite.wsgi:application"], cwd=str(tmp_path))
    nginx = Nginx.uwsgi_pass(tmp_path, f"unix:{sock}")
    try:
        status, _, body = get(nginx.port, "/admin/login/?next=/admin/")
        assert status == 200, server.log() + nginx.error_log()
        assert "Django administration" in body
        status, headers, _ = get(nginx.port, "/admin/")
        assert status == 302 and headers["Location"] == "/admin/login/?next=/admin/"
        status, _, _ = get(nginx.port, "/no-such-page/")
        assert status == 404
    finally:
        nginx.stop()
        server.stop()


def test_django_asgi_async_view_directly_and_behind_nginx(tmp_path):
    """`django-admin startproject` plus an `async def` view, served from `mysite.asgi:application`: over HTTP,
    and behind a real nginx with uwsgi_pass on a unix socket. Django does not speak lifespan: one notice."""
    root = tmp_path / "asgi-project"
    root.mkdir()  # (startproject into a directory wants it to exist)
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)], check=True, timeout=60)
    with open(root / "mysite" / "urls.py", "a") as urls:
        urls.write("\n\nimport asyncio\nfrom django.http import HttpResponse\nfrom django.urls import path as _path\n\n\n"
                   "async def hello(request):\n    await asyncio.sleep(0.01)\n"
                   "    return HttpResponse(f'async hello {request.path}')\n\n\n"
                   "urlpatterns.append(_path('hello/', hello))\n")
    sock = tmp_path / "asgi.sock"
    server = Server(["--socket", str(sock), "--http-socket", "127.0.0.1:0", "--chdir", str(root), "--module",
                     "mysite.asgi:application", "--master", "--processes", "2"], cwd=str(tmp_path))
    nginx = Nginx.uwsgi_pass(tmp_path, f"unix:{sock}")
    try:
        _host, port = server.address("HTTP")
        assert get(port, "/hello/")[::2] == (200, "async hello /hello/")
        status, _, body = get(nginx.port, "/hello/")
        assert (status, body) == (200, "async hello /hello/"), server.log() + nginx.error_log()
        status, _, body = get(nginx.port, "/admin/login/?next=/admin/")
        assert status == 200 and "Django administration" in body
        assert "does not speak ASGI lifespan" in server.log()
    finally:
        nginx.stop()
        server.stop()
