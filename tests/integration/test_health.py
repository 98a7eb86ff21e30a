"""Keeping workers healthy, with real processes: harakiri (504, the stuck stack in the log, the other
worker unaffected), recycling by max-requests and reload-on-rss without a failed request and never all
at once, touch-reload and py-autoreload serving new code, crashes of every kind respawned."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

import pytest

from tests.integration.server import APPS
from tests.integration.test_master import VERSIONED_APP, children, get, master, wait_for


class Load:
    """Requests on new connections from a few threads until stopped; counts failures and pids seen."""

    def __init__(self, address, path: str = "/", threads: int = 4, limit: int = 100000) -> None:
        self.address, self.path, self.limit = address, path, limit
        self.failures: list = []
        self.bodies: list[bytes] = []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        while not self.done.is_set() and len(self.bodies) < self.limit:
            try:
                status, body = get(self.address, self.path)
                if status != 200:
                    self.failures.append((status, body[:100]))
                self.bodies.append(body)
            except OSError as exc:
                self.failures.append(repr(exc))

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(30)


def test_harakiri_kills_the_stuck_request_with_504_and_its_stack(tmp_path):
    server = master(tmp_path, "--processes", "2", "--harakiri", "2")
    try:
        address = server.address()
        wait_for(lambda: len(children(server.proc.pid)) == 2)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            started = time.monotonic()
            stuck = pool.submit(get, address, "/sleep?30")
            time.sleep(0.5)
            assert get(address, "/") == (200, b"Hello World!")  # the other worker serves meanwhile
            status, body = stuck.result(10)
            took = time.monotonic() - started
        assert status == 504 and b"harakiri" in body
        assert took < 2 + 1, took
        assert server.wait_log("HARAKIRI ON WORKER")
        log = server.log()
        assert "GET /sleep?30 has run for 2." in log
        assert 'time.sleep(float(environ.get("QUERY_STRING") or "1"))' in log  # the stuck line, from the stack
        assert wait_for(lambda: "Respawned uisge worker" in server.log(), 5)
        assert get(address, "/") == (200, b"Hello World!")
    finally:
        server.stop()


@pytest.mark.parametrize("threads", [1, 2])
def test_harakiri_from_the_master_when_the_app_holds_the_gil(tmp_path, threads):
    """The worker's watchdog cannot run while app code holds the GIL: the master sees the deadline pass on the
    scoreboard, logs the request and every thread's stack (faulthandler), kills the worker and respawns it."""
    seen = tmp_path / "seen.txt"
    server = master(tmp_path, "--processes", "2", "--threads", str(threads), "--harakiri", "2",
                    env={"UISGE_TEST_SEEN": str(seen)})
    try:
        address = server.address()
        before = set(wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid)))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            stuck = pool.submit(get, address, "/gil")
            assert wait_for(lambda: seen.exists() and "holding the GIL in" in seen.read_text())
            stuck_pid = int(seen.read_text().split("holding the GIL in ")[1].split()[0])
            status, other = get(address, "/pid")  # the other worker serves meanwhile
            assert status == 200 and int(other) != stuck_pid and not stuck.done()
            try:
                status, _body = stuck.result(10)
            except (ConnectionError, ValueError):
                status = 0  # closed without an answer: the worker that had it is gone
            took = time.monotonic() - started
        assert status in (0, 504) and took < 6, (status, took)
        assert server.wait_log("killed by harakiri; respawning it")
        log = server.log()
        assert f"(pid: {stuck_pid}), from the master ***: GET /gil has run for" in log
        assert 'testapp.py", line' in log and "in raw_app" in log  # the stuck line, from faulthandler
        assert stuck_pid in before
        assert wait_for(lambda: stuck_pid not in children(server.proc.pid) and len(children(server.proc.pid)) == 2)
        assert get(address, "/") == (200, b"Hello World!")
    finally:
        server.stop()


def test_max_requests_recycles_one_at_a_time_without_failures(tmp_path):
    server = master(tmp_path, "--processes", "4", "--max-requests", "50", "--min-worker-lifetime", "0")
    try:
        address = server.address()
        assert wait_for(lambda: len(children(server.proc.pid)) == 4)
        load = Load(address, "/pid", threads=4, limit=2000)
        for t in load.threads:
            t.join(120)
        assert load.failures == [], load.failures[:5]
        assert len(load.bodies) >= 2000
        per_pid = {pid: load.bodies.count(pid) for pid in set(load.bodies)}
        # workers rotated during the load, and every one that reached 50 said it was done. How many requests a
        # worker serves past 50 is not bounded here: it keeps serving while the workers queued before it are
        # replaced, one at a time, so the excess depends on how fast this machine forks and starts them (one
        # fresh-clone run saw 356, most see under 150)
        assert len(per_pid) >= 5, per_pid  # at least one replacement served
        done = [line for line in server.log().splitlines() if " is done: " in line]
        for pid, served in per_pid.items():
            if served >= 50:
                assert any(f"process {int(pid)} (worker" in line for line in done), (pid, served, done)
        # the master's log, in its order: a worker leaves only after its replacement was spawned
        alive, lowest = 0, 4
        for line in server.log().splitlines():
            if line.startswith("spawned uisge worker"):
                alive += 1
            elif " buried after " in line:
                alive -= 1
                lowest = min(lowest, alive)
        assert lowest >= 4, "fewer workers than `processes` at some moment: several recycled at once"
    finally:
        server.stop()


def test_reload_on_rss_recycles_a_growing_worker(tmp_path):
    server = master(tmp_path, "--processes", "2", "--reload-on-rss", "80", "--min-worker-lifetime", "0")
    try:
        address = server.address()
        first = set(children(server.proc.pid))
        load = Load(address, "/grow", threads=2, limit=60)
        for t in load.threads:
            t.join(60)
        assert load.failures == [], load.failures[:5]
        assert "reached reload-on-rss (80 MB)" in server.log()
        assert wait_for(lambda: set(children(server.proc.pid)) - first, 10)
    finally:
        server.stop()


def test_touch_reload_and_py_autoreload_serve_new_code_without_failures(tmp_path):
    module = tmp_path / "versioninfo.py"
    module.write_text("VERSION = 1\n")
    app = tmp_path / "app.py"
    app.write_text("import versioninfo\n\n"
                   "def application(environ, start_response):\n"
                   "    body = b'version %d' % versioninfo.VERSION\n"
                   "    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n"
                   "    return [body]\n")
    trigger = tmp_path / "reload.trigger"
    trigger.write_text("")
    server = master(tmp_path, "--processes", "2", "--py-autoreload", "1", "--touch-reload", str(trigger),
                    "--pythonpath", str(tmp_path), app=str(app))
    try:
        address = server.address()
        assert get(address) == (200, b"version 1")
        load = Load(address)
        time.sleep(1.2)
        module.write_text("VERSION = 2\n")  # py-autoreload notices within a second or two
        assert wait_for(lambda: get(address)[1] == b"version 2", 15), server.log()[-2000:]
        module.write_text("VERSION = 3\n")
        os.utime(trigger)  # touch-reload as well (py-autoreload may win the race: either way, version 3)
        assert wait_for(lambda: get(address)[1] == b"version 3", 15), server.log()[-2000:]
        load.stop()
        assert load.failures == [], load.failures[:5]
        assert "py-autoreload: " in server.log()
    finally:
        server.stop()


def test_crashes_of_every_kind_are_respawned(tmp_path):
    server = master(tmp_path, "--processes", "2")
    try:
        address = server.address()
        for path in ("/segv", "/exit", "/raise"):
            before = server.log().count("Respawned uisge worker")
            try:
                status, _ = get(address, path)
            except OSError:
                status = None  # the worker died under the request: no answer, as with uWSGI
            if path == "/raise":
                assert status == 500  # an exception never kills a worker
                assert server.log().count("Respawned uisge worker") == before
            else:
                assert status is None
                assert wait_for(lambda: server.log().count("Respawned uisge worker") > before, 5), path
            assert get(address) == (200, b"Hello World!")
        assert "killed by signal 11" in server.log() and "exit code 3" in server.log()
    finally:
        server.stop()


def test_memory_report_and_evil_reload_on_rss(tmp_path):
    server = master(tmp_path, "--processes", "1", "--memory-report", "--evil-reload-on-rss", "120")
    try:
        address = server.address()
        assert get(address, "/") == (200, b"Hello World!")
        assert server.wait_log("} {rss usage: ")
        line = next(l for l in server.log().splitlines() if "{rss usage:" in l)
        assert line.startswith("{address space usage: ") and "[pid: " in line and "GET / =>" in line
        for _ in range(16):  # 8 MB each: past 120 MB the master kills the worker from outside
            try:
                get(address, "/grow")
            except OSError:
                break
        assert wait_for(lambda: "EVIL RELOAD ON WORKER 1 RSS:" in server.log(), 10), server.log()[-1500:]
        assert wait_for(lambda: "Respawned uisge worker 1" in server.log(), 5)
        assert get(address, "/") == (200, b"Hello World!")
    finally:
        server.stop()


def test_harakiri_with_threads_and_a_graceful_signal(tmp_path):
    server = master(tmp_path, "--processes", "1", "--threads", "2", "--harakiri", "1",
                    "--harakiri-graceful-timeout", "1", "--harakiri-graceful-signal", "SIGTERM")
    try:
        address = server.address()
        started = time.monotonic()
        status, body = get(address, "/sleep?20")
        assert status == 504
        assert time.monotonic() - started < 1 + 1
        assert wait_for(lambda: "Respawned uisge worker 1" in server.log(), 10), server.log()[-1500:]
        assert get(address, "/") == (200, b"Hello World!")
    finally:
        server.stop()


def test_touch_chain_reload_and_max_worker_lifetime_replace_one_at_a_time(tmp_path):
    trigger = tmp_path / "chain.trigger"
    trigger.write_text("")
    server = master(tmp_path, "--processes", "3", "--touch-chain-reload", str(trigger))
    try:
        address = server.address()
        before = set(wait_for(lambda: len(children(server.proc.pid)) == 3 and children(server.proc.pid)))
        load = Load(address)
        time.sleep(1.2)
        os.utime(trigger)
        assert wait_for(lambda: not (set(children(server.proc.pid)) & before), 20), server.log()[-2000:]
        load.stop()
        assert load.failures == [], load.failures[:5]
        assert "chain reload !!!" in server.log()
    finally:
        server.stop()
    server = master(tmp_path, "--processes", "2", "--max-worker-lifetime", "2", "--min-worker-lifetime", "0")
    try:
        first = set(wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid)))
        assert wait_for(lambda: not (set(children(server.proc.pid)) & first), 10), server.log()[-2000:]
        assert "max-worker-lifetime is 2 s" in server.log()
        assert get(server.address()) == (200, b"Hello World!")
    finally:
        server.stop()
