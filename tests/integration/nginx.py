"""A real nginx for tests: writes a config into the test's temp dir, starts nginx in the foreground,
stops it afterwards. `require_tool` skips when a system tool is missing, except under the project's
test command (UISGE_TESTS_STRICT=1), where a missing tool is a failure, never a silent skip."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def require_tool(name: str, *fallbacks: str) -> str:
    path = shutil.which(name) or next((p for p in fallbacks if os.access(p, os.X_OK)), None)
    if path is None:
        message = f"{name} is not installed (scripts/test installs it with apt-get)"
        if os.environ.get("UISGE_TESTS_STRICT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """\
{user}
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    uwsgi_temp_path {tmp}/uwsgi;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 20m;
{http_extra}
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
"""

UWSGI_PASS = """\
        location / {{
            include {params};
            uwsgi_pass {upstream};
        }}"""


class Nginx:
    def __init__(self, tmp: Path, locations: str, http_extra: str = "") -> None:
        binary = require_tool("nginx", "/usr/sbin/nginx")
        self.tmp = tmp
        self.port = free_port()
        # as root, nginx's workers run as nobody and could not reach sockets in pytest's 0700 temp dirs
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(CONF.format(user=user, tmp=tmp, port=self.port, locations=locations, http_extra=http_extra))
        self.proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening within 10 s")

    @classmethod
    def uwsgi_pass(cls, tmp: Path, upstream: str) -> "Nginx":
        params = "/etc/nginx/uwsgi_params"
        if not os.path.exists(params):
            pytest.fail(f"{params} is missing: nginx is installed without its uwsgi_params file")
        return cls(tmp, UWSGI_PASS.format(params=params, upstream=upstream))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.tmp / "nginx-error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
