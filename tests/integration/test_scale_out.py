"""The scale-out recipe of docs/deployment.md, run for real: three instances (one master each, unix sockets)
behind one nginx `upstream` with `uwsgi_pass` and `uwsgi_next_upstream error timeout`; 10 client threads load
it all along (at least 2,000 requests), one instance is killed (-9) after 500, then the two others are reloaded
one after the other: not one request fails at the client."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request

from tests.integration.nginx import Nginx
from tests.integration.server import APPS, Server

APP = str(APPS / "testapp.py")

UPSTREAM = """\
    upstream app {{
{servers}
    }}"""

LOCATION = """\
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass app;
            uwsgi_next_upstream error timeout;
            uwsgi_next_upstream_tries 3;
        }"""


def test_three_instances_behind_nginx_lose_no_request_to_a_kill_or_a_rolling_reload(tmp_path):
    socks = [tmp_path / f"app{i}.sock" for i in range(3)]
    servers = [Server(["--master", "--processes", "2", "--socket", str(sock), "--wsgi-file", APP,
                       "--pidfile", str(tmp_path / f"app{i}.pid")], cwd=str(tmp_path))
               for i, sock in enumerate(socks)]
    upstream = UPSTREAM.format(servers="\n".join(f"        server unix:{s} max_fails=1 fail_timeout=10s;"
                                                 for s in socks))
    nginx = None
    failures: list[str] = []
    served = [0]
    lock = threading.Lock()
    total = 2000

    done = threading.Event()  # set once the kill and the rolling reload are over and `total` were served

    def client() -> None:
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"{nginx.url}/", timeout=20) as r:
                    ok = r.status == 200 and r.read() == b"Hello World!"
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                ok = False
                failures.append(repr(exc))
            with lock:
                if ok:
                    served[0] += 1
                else:
                    failures.append("bad answer")

    clients = [threading.Thread(target=client) for _ in range(10)]
    try:
        nginx = Nginx(tmp_path, LOCATION, http_extra=upstream)
        for t in clients:
            t.start()
        deadline = time.monotonic() + 60
        while served[0] < 500:
            assert time.monotonic() < deadline and not failures, failures[:5]
            time.sleep(0.01)
        victim = servers.pop(0)  # kill -9: master and workers, in the middle of the load
        children = open(f"/proc/{victim.proc.pid}/task/{victim.proc.pid}/children").read().split()
        os.kill(victim.proc.pid, signal.SIGKILL)
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        victim.proc.wait(10)
        for i, server in enumerate(servers, start=1):  # a rolling reload of the others, one at a time
            before = server.log().count("reload complete")
            os.kill(server.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 30
            while server.log().count("reload complete") <= before:
                assert time.monotonic() < deadline, server.log()[-3000:]
                time.sleep(0.05)
        deadline = time.monotonic() + 60
        while served[0] < total:
            assert time.monotonic() < deadline, served[0]
            time.sleep(0.01)
        done.set()
        for t in clients:
            t.join(60)
        assert failures == [], (len(failures), failures[:5], nginx.error_log()[-2000:])
        assert served[0] >= total
    finally:
        done.set()
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()
