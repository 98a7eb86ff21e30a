"""The seeds' Django deployments for real: `startproject`, `collectstatic`, `migrate`, a superuser; served
by uisge with seed 000's ini (static-map, in headless Chromium: the admin login page with its styles),
and behind nginx as seeds 001/002 do (uwsgi_pass to a unix socket or TCP, or proxy_pass to an
http-socket; nginx serves /static by alias) with a scripted admin login: CSRF, cookies, POST, redirect."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.integration.nginx import Nginx, require_tool
from tests.integration.server import Server
from tests.integration.test_stats import ARTIFACTS, CHROMIUM_FLAGS

pytest.importorskip("django", reason="Django is in the [test] extras that scripts/test installs")
PASSWORD = "uisge-Secret-42"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    run = lambda *args, **env: subprocess.run([sys.executable, *args], cwd=root, check=True, timeout=120,  # noqa: E731
                                              capture_output=True, env=dict(os.environ, **env))
    run("-m", "django", "startproject", "mysite", ".")
    settings = root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + '\nSTATIC_ROOT = BASE_DIR / "static"\n')
    run("manage.py", "collectstatic", "--no-input")
    run("manage.py", "migrate", "--no-input")
    run("manage.py", "createsuperuser", "--no-input", "--username", "admin", "--email", "admin@example.org",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    assert (root / "static" / "admin" / "css" / "base.css").exists()
    return root


def screenshot(url: str, name: str, profile: str) -> str:
    chromium = require_tool("chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, name)
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=3000",
                    f"--screenshot={shot}", url], capture_output=True, timeout=90)
    assert os.path.getsize(shot) > 10_000
    return shot


def test_seed000_admin_login_has_its_styles_in_chromium(site, tmp_path):
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"""[uwsgi]
project = mysite
base = {site}
http-socket = 127.0.0.1:0        # seed 000 writes http = :8000
chdir = %(base)
wsgi-file = %(project)/wsgi.py
master = true
processes = 2
threads = 2
static-map = /static=%(base)/static
harakiri = 30
max-requests = 5000
""")
    server = Server([str(ini)], cwd=str(tmp_path))
    try:
        host, port = server.address()
        css = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=20)
        assert css.headers["Content-Type"].startswith("text/css")  # else browsers refuse the stylesheet
        screenshot(f"http://127.0.0.1:{port}/admin/login/", "admin-login-direct.png", str(tmp_path / "profile"))
        assert server.wait_log("GET /admin/login/ => generated")
        css = re.search(r"GET /static/admin/css/base\.css => generated (\d+) bytes .*\(HTTP/1\.1 200\)",
                        server.log().split("GET /admin/login/ => generated")[-1])
        assert css and int(css.group(1)) > 1000, server.log()[-3000:]  # the browser got the stylesheet
    finally:
        server.stop()


def login(base: str) -> str:
    """Log into the admin through `base` as a browser would; returns the page after the redirect."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/?next=/admin/", timeout=20).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": "admin", "password": PASSWORD,
                                   "next": "/admin/"}).encode()
    resp = opener.open(urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=form,
                                              headers={"Referer": f"{base}/admin/login/"}), timeout=20)
    assert resp.geturl().endswith("/admin/"), resp.geturl()  # the 302 after a good login was followed
    assert any(c.name == "sessionid" for c in jar)
    return resp.read().decode()


@pytest.mark.parametrize("upstream", ["unix", "tcp", "http"])
def test_behind_nginx_static_by_alias_and_admin_login(site, tmp_path, upstream):
    args = ["--chdir", str(site), "--module", "mysite.wsgi:application", "--master", "--processes", "2"]
    if upstream == "unix":
        sock = tmp_path / "mysite.sock"
        server = Server([*args, "--socket", str(sock), "--chmod-socket", "660"], cwd=str(tmp_path))
        location = f"include /etc/nginx/uwsgi_params;\n            uwsgi_pass unix:{sock};"
    elif upstream == "tcp":
        server = Server([*args, "--socket", "127.0.0.1:0"], cwd=str(tmp_path))
        host, port = server.address("uwsgi")
        location = f"include /etc/nginx/uwsgi_params;\n            uwsgi_pass {host}:{port};"
    else:
        server = Server([*args, "--http-socket", "127.0.0.1:0"], cwd=str(tmp_path))
        host, port = server.address("HTTP")
        location = (f"proxy_pass http://{host}:{port};\n            proxy_set_header Host $http_host;\n"
                    f"            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";")
    nginx = Nginx(tmp_path, f"""        location /static {{
            alias {site}/static;
        }}
        location / {{
            {location}
        }}""")
    try:
        base = f"http://127.0.0.1:{nginx.port}"
        css = urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=20)
        assert css.status == 200 and b"body" in css.read()
        assert css.headers["Content-Type"].startswith("text/css")  # else browsers refuse the stylesheet
        assert "/static/" not in server.log()  # nginx served the static files, uisge only the app
        page = login(base)
        assert "Site administration" in page
        if upstream == "unix":
            screenshot(f"{base}/admin/login/", "admin-login-nginx.png", str(tmp_path / "profile"))
            assert "GET /static/admin/css/base.css HTTP/1.1\" 200" in (tmp_path / "nginx-access.log").read_text()
    finally:
        nginx.stop()
        server.stop()
