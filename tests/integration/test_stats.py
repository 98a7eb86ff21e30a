"""The stats server with real processes: uWSGI's JSON document with real values over TCP and a unix
socket, `--connect-and-read`, stats-http with Prometheus metrics (checked by prometheus_client's
parser), /healthz and /readyz, and the real uwsgitop from PyPI reading us in tmux."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.integration.nginx import free_port, require_tool
from tests.integration.test_master import children, get, master, wait_for


class Tmux:
    """A detached tmux session running `command` in a 150x25 terminal; `screen()` is what it shows."""

    def __init__(self, command: str, name: str) -> None:
        self.tmux = require_tool("tmux")
        self.session = f"{name}-{os.getpid()}"
        subprocess.run([self.tmux, "new-session", "-d", "-s", self.session, "-x", "160", "-y", "30", command],
                       check=True, timeout=20)

    def screen(self) -> str:
        return subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.session], capture_output=True,
                              text=True, timeout=10).stdout

    def keys(self, keys: str) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.session, keys], timeout=10)

    def alive(self) -> bool:
        return subprocess.run([self.tmux, "has-session", "-t", self.session], capture_output=True).returncode == 0

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.session], capture_output=True, timeout=10)


def read_stats(address) -> dict:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(address)
    else:
        sock = socket.create_connection(address, timeout=10)
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data)


def test_stats_json_has_uwsgis_shape_and_real_values(tmp_path):
    port = free_port()
    server = master(tmp_path, "--processes", "2", "--threads", "1", "--stats", f"127.0.0.1:{port}")
    try:
        address = server.address()
        assert server.wait_log(f"Stats server enabled on 127.0.0.1:{port}")
        for _ in range(10):
            assert get(address)[0] == 200
        assert get(address, "/raise")[0] == 500
        stats = wait_for(lambda: (s := read_stats(("127.0.0.1", port))) and
                         sum(w["requests"] for w in s["workers"]) == 11 and s)
        for key in ("version", "listen_queue", "listen_queue_errors", "signal_queue", "load", "pid", "uid", "gid",
                    "cwd", "locks", "sockets", "workers"):
            assert key in stats, key
        assert stats["pid"] == server.proc.pid
        workers = stats["workers"]
        assert [w["id"] for w in workers] == [1, 2]
        assert {w["pid"] for w in workers} == set(children(server.proc.pid))
        for w in workers:
            for key in ("accepting", "requests", "delta_requests", "exceptions", "harakiri_count", "signals",
                        "status", "rss", "vsz", "running_time", "last_spawn", "respawn_count", "tx", "avg_rt",
                        "apps", "cores"):
                assert key in w, key
            assert w["accepting"] == 1 and w["status"] == "idle" and w["respawn_count"] == 1
            assert w["rss"] > 1_000_000 and w["vsz"] > w["rss"]  # real memory, read from /proc
        assert sum(w["exceptions"] for w in workers) == 1
        assert sum(w["tx"] for w in workers) > 11 * 12
        assert abs(workers[0]["last_spawn"] - time.time()) < 120
        # a busy worker and a real listen queue: both workers sleep, more connections wait in the backlog
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(get, address, "/sleep?1.5") for _ in range(5)]
            time.sleep(0.6)
            busy = read_stats(("127.0.0.1", port))
            assert [w["status"] for w in busy["workers"]] == ["busy", "busy"]
            assert busy["listen_queue"] >= 1 and busy["sockets"][0]["queue"] == busy["listen_queue"]
            assert all(f.result(20)[0] == 200 for f in futures)
    finally:
        server.stop()


def test_connect_and_read_and_unix_stats_socket(tmp_path):
    path = str(tmp_path / "stats.sock")
    server = master(tmp_path, "--processes", "1", "--stats", path, "--stats-minified")
    try:
        assert wait_for(lambda: os.path.exists(path))
        out = subprocess.run([sys.executable, "-m", "uisge", "--connect-and-read", path], capture_output=True,
                             text=True, timeout=20)
        assert out.returncode == 0
        doc = json.loads(out.stderr)
        assert doc["workers"][0]["id"] == 1 and "\n" not in out.stderr.strip()  # minified: one line
        bad = subprocess.run([sys.executable, "-m", "uisge", "--connect-and-read", str(tmp_path / "none.sock")],
                             capture_output=True, text=True, timeout=20)
        assert bad.returncode == 1 and "cannot connect" in bad.stderr
    finally:
        server.stop()


def test_stats_http_prometheus_and_health(tmp_path):
    parser = pytest.importorskip("prometheus_client.parser")
    port = free_port()
    server = master(tmp_path, "--processes", "2", "--stats", f"127.0.0.1:{port}", "--stats-http")
    try:
        address = server.address()
        for _ in range(5):
            get(address)
        base = f"http://127.0.0.1:{port}"
        assert json.loads(urllib.request.urlopen(base + "/", timeout=10).read())["workers"]
        assert urllib.request.urlopen(base + "/healthz", timeout=10).read() == b"ok\n"
        assert wait_for(lambda: urllib.request.urlopen(base + "/readyz", timeout=10).status == 200)
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        families = {f.name: f for f in parser.text_string_to_metric_families(text)}
        requests = families["uwsgi_worker_requests"]  # the parser drops the _total suffix of counters
        assert sum(s.value for s in requests.samples) == 5
        assert {s.labels["worker_id"] for s in requests.samples} == {"1", "2"}
        for name in ("uwsgi_worker_exceptions", "uwsgi_worker_harakiri_count", "uwsgi_worker_respawn_count",
                     "uwsgi_worker_busy", "uwsgi_worker_rss_bytes", "uwsgi_listen_queue_length"):
            assert name in families, name
        histogram = families["uisge_request_duration_seconds"]
        count = next(s.value for s in histogram.samples if s.name.endswith("_count"))
        assert count == 5
    finally:
        server.stop()


def test_metrics_address_and_readyz_while_stopping(tmp_path):
    port = free_port()
    server = master(tmp_path, "--processes", "1", "--metrics", f"127.0.0.1:{port}")
    try:
        assert wait_for(lambda: _status(f"http://127.0.0.1:{port}/readyz") == 200)
        assert "uwsgi_worker_requests_total" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(get, server.address(), "/sleep?2")
            time.sleep(0.5)
            os.kill(server.proc.pid, signal.SIGTERM)  # a graceful stop drains the slow request...
            assert wait_for(lambda: _status(f"http://127.0.0.1:{port}/readyz") == 503, 5)  # ...not ready meanwhile
            assert _status(f"http://127.0.0.1:{port}/healthz") == 200  # but the master is alive
            assert slow.result(20)[0] == 200
        assert server.proc.wait(20) == 0
    finally:
        server.stop()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_real_uwsgitop_shows_our_workers(tmp_path):
    uwsgitop = shutil.which("uwsgitop") or os.path.join(os.path.dirname(sys.executable), "uwsgitop")
    if not os.path.exists(uwsgitop):
        pytest.fail("uwsgitop is not installed: it is in the [test] extras")
    port = free_port()
    server = master(tmp_path, "--processes", "2", "--stats", f"127.0.0.1:{port}")
    top = None
    try:
        address = server.address()
        for _ in range(7):
            get(address)
        top = Tmux(f"{uwsgitop} 127.0.0.1:{port}", "uisge-uwsgitop")
        text = wait_for(lambda: "req: 7" in top.screen() and top.screen(), 15)
        assert text, top.screen()
        assert "uisge-" in text  # the header line: uwsgi-<version> - <time> - req: ... - RPS: ... - lq: ...
        pids = children(server.proc.pid)
        rows = [line for line in text.splitlines() if any(str(pid) in line for pid in pids)]
        assert len(rows) == 2, text
        assert all("idle" in row for row in rows), text
    finally:
        if top is not None:
            top.close()
        server.stop()


def test_uisge_top_in_a_terminal(tmp_path):
    port = free_port()
    server = master(tmp_path, "--processes", "2", "--stats", f"127.0.0.1:{port}")
    top = None
    try:
        address = server.address()
        for _ in range(4):
            get(address)
        top = Tmux(f"{sys.executable} -m uisge top 127.0.0.1:{port}", "uisge-top")
        assert wait_for(lambda: "requests: 4" in top.screen(), 10), top.screen()
        deadline, text = time.monotonic() + 6, ""
        while time.monotonic() < deadline:  # traffic while it watches, until a refresh shows RPS above zero
            for _ in range(20):
                get(address)
            text = top.screen()
            if "RPS: " in text and "RPS: 0.0 " not in text.splitlines()[0]:
                break
        assert "RPS: " in text and "RPS: 0.0 " not in text.splitlines()[0], text
        assert "WID" in text and "RSS" in text
        pids = children(server.proc.pid)
        assert len([line for line in text.splitlines() if any(f" {pid} " in line for pid in pids)]) == 2, text
        top.keys("q")
        assert wait_for(lambda: not top.alive(), 5)
    finally:
        if top is not None:
            top.close()
        server.stop()


ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "test-artifacts")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,900"]


def test_live_dashboard_draws_from_real_traffic_in_chromium(tmp_path):
    chromium = require_tool("chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
    port = free_port()
    server = master(tmp_path, "--processes", "2", "--stats", f"127.0.0.1:{port}", "--stats-http")
    url = f"http://127.0.0.1:{port}/"
    try:
        address = server.address()
        page = urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "text/html"}), timeout=10)
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"<canvas" in page.read()
        assert json.loads(urllib.request.urlopen(url, timeout=10).read())["workers"]  # clients like uwsgitop: JSON
        stop = time.monotonic() + 25
        traffic = concurrent.futures.ThreadPoolExecutor(1).submit(
            lambda: [get(address) for _ in iter(lambda: time.monotonic() < stop, False)])
        os.makedirs(ARTIFACTS, exist_ok=True)
        profile = str(tmp_path / "chromium-profile")
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=6000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
        shot = os.path.join(ARTIFACTS, "dashboard.png")
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=6000",
                        f"--screenshot={shot}", url], capture_output=True, timeout=60)
        stop = 0
        traffic.result(30)
        import re as _re

        samples = _re.search(r'id="samples" data-count="(\d+)" data-last-rps="[\d.]+" data-max-rps="([\d.]+)"', dom)
        assert samples, dom[-2000:]
        assert int(samples.group(1)) >= 3, "the page did not poll the stats"
        assert float(samples.group(2)) > 0, "no requests per second drawn from the real traffic"
        assert "master pid" in dom and "2 workers" in dom
        assert os.path.getsize(shot) > 10_000  # a real picture: bench/README and the issue note can show it
    finally:
        server.stop()
