"""The master with real processes and real signals: processes x threads, respawn after kill -9, ten
graceful reloads under load with new code and no failed request, SIGTERM serving the listen backlog,
--stop/--reload with a pidfile, vacuum, daemonize, the master FIFO."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.server import APPS, Server, read_response


def get(address, path: str = "/", timeout: float = 20) -> tuple[int, bytes]:
    """One request on a new connection (as nginx's uwsgi_pass does), `Connection: close`."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        status, _headers, body = read_response(sock)
    return status, body


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry))
    return out


def wait_for(predicate, timeout: float = 10, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def master(tmp_path, *extra: str, app: str | None = None, env: dict | None = None) -> Server:
    app = app or str(APPS / "testapp.py")
    return Server(["--master", "--http-socket", "127.0.0.1:0", "--wsgi-file", app, *extra], cwd=str(tmp_path),
                  env=env or {})


def test_processes_times_threads(tmp_path):
    server = master(tmp_path, "--processes", "4", "--threads", "2")
    try:
        workers = wait_for(lambda: len(children(server.proc.pid)) == 4 and children(server.proc.pid))
        assert len(workers) == 4
        for pid in workers:  # the main loop plus 2 app threads in each worker
            assert wait_for(lambda: "Threads:\t3" in Path(f"/proc/{pid}/status").read_text(), 5), pid
        address = server.address()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            started = time.monotonic()
            results = list(pool.map(lambda _: get(address, "/sleep?0.6"), range(16)))
            took = time.monotonic() - started
        assert all(status == 200 for status, _ in results)
        spans = [body.decode().split() for _, body in results]
        pids = {pid for pid, _, _ in spans}
        assert pids <= {str(p) for p in workers} and len(pids) >= 2
        overlapping = any(a is not b and a[0] == b[0] and float(a[1]) < float(b[2]) and float(b[1]) < float(a[2])
                          for a in spans for b in spans)
        assert overlapping, "no worker ran two requests at once"
        assert took < 16 * 0.6 / 2, f"16 sleeps of 0.6 s took {took:.1f} s: not spread over workers and threads"
    finally:
        server.stop()


def test_killed_worker_is_respawned_and_others_keep_serving(tmp_path, seen):
    server = master(tmp_path, "--processes", "3", env={"UISGE_TEST_SEEN": str(seen)})
    try:
        address = server.address()
        wait_for(lambda: len(children(server.proc.pid)) == 3)
        slow = concurrent.futures.ThreadPoolExecutor(1).submit(get, address, "/sleep?5")
        victim = int(wait_for(lambda: seen.exists() and re.search(r"sleeping in (\d+)", seen.read_text()), 5).group(1))
        failures, done = [], threading.Event()

        def load():
            while not done.is_set():
                try:
                    status, body = get(address, "/")
                    if status != 200:
                        failures.append(status)
                except OSError as exc:
                    failures.append(repr(exc))

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        assert wait_for(lambda: "Respawned uisge worker" in server.log(), 5), server.log()
        respawn_took = time.monotonic() - killed_at
        time.sleep(0.5)
        done.set()
        loader.join()
        assert failures == []
        assert respawn_took < 1.0, respawn_took
        assert f"(pid: {victim}) died, killed by signal 9" in server.log()
        assert len(children(server.proc.pid)) == 3
        with pytest.raises(OSError):  # the request the killed worker held is lost, as with uWSGI
            slow.result(10)
    finally:
        server.stop()


VERSIONED_APP = """
VERSION = {version}

def application(environ, start_response):
    body = b"version %d" % VERSION
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_ten_graceful_reloads_under_load_lose_nothing(tmp_path):
    app = tmp_path / "versioned.py"
    app.write_text(VERSIONED_APP.format(version=0))
    server = master(tmp_path, "--processes", "2", "--threads", "2", app=str(app))
    try:
        address = server.address()
        failures, served, done = [], [0], threading.Event()

        def load():
            while not done.is_set():
                try:
                    status, body = get(address, "/")
                    if status != 200 or not body.startswith(b"version "):
                        failures.append((status, body[:80]))
                    served[0] += 1
                except OSError as exc:
                    failures.append(repr(exc))

        loaders = [threading.Thread(target=load) for _ in range(4)]
        for t in loaders:
            t.start()
        for version in range(1, 11):
            app.write_text(VERSIONED_APP.format(version=version))
            before = server.log().count("reload complete")
            os.kill(server.proc.pid, signal.SIGHUP)
            assert wait_for(lambda: server.log().count("reload complete") > before, 20), server.log()[-3000:]
            assert wait_for(lambda: get(address)[1] == b"version %d" % version, 10)
        time.sleep(0.5)
        done.set()
        for t in loaders:
            t.join()
        assert failures == [], failures[:5]
        assert served[0] > 100
        assert get(address)[1] == b"version 10"
        assert server.proc.poll() is None  # the same master pid all along
        assert len(wait_for(lambda: len(children(server.proc.pid)) == 2 and children(server.proc.pid))) == 2
    finally:
        server.stop()


def test_reload_with_broken_code_keeps_the_old_version_serving(tmp_path):
    app = tmp_path / "versioned.py"
    app.write_text(VERSIONED_APP.format(version=1))
    server = master(tmp_path, "--processes", "2", app=str(app))
    try:
        address = server.address()
        app.write_text("def application(environ, start_response:\n")  # a syntax error
        os.kill(server.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: "reload aborted" in server.log(), 20), server.log()
        assert "SyntaxError" in server.log()
        assert get(address) == (200, b"version 1")
    finally:
        server.stop()


def test_sigterm_serves_in_flight_and_backlog_then_exits_0(tmp_path):
    server = master(tmp_path, "--processes", "1", "--threads", "1")
    try:
        address = server.address()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            slow = pool.submit(get, address, "/sleep?1")
            time.sleep(0.3)  # the only worker is now inside the app
            queued = [pool.submit(get, address, f"/?n={i}") for i in range(6)]  # these wait in the backlog
            time.sleep(0.3)
            os.kill(server.proc.pid, signal.SIGTERM)
            assert slow.result(20)[0] == 200
            assert [f.result(20) for f in queued] == [(200, b"Hello World!")] * 6
        assert server.proc.wait(20) == 0
        assert server.wait_log("goodbye to uisge.")
    finally:
        server.stop()


def test_stop_and_reload_with_pidfile_and_vacuum(tmp_path):
    pidfile = tmp_path / "run" / "app.pid"
    pidfile.parent.mkdir()
    sock = tmp_path / "app.sock"
    server = Server(["--master", "--processes", "2", "--socket", str(sock), "--http-socket", "127.0.0.1:0",
                     "--wsgi-file", str(APPS / "testapp.py"), "--pidfile", str(pidfile), "--vacuum"],
                    cwd=str(tmp_path))
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() == str(server.proc.pid))
        assert sock.exists()
        uisge = [sys.executable, "-m", "uisge"]
        out = subprocess.run([*uisge, "--reload", str(pidfile)], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert wait_for(lambda: "reload complete" in server.log(), 20), server.log()
        assert get(server.address()) == (200, b"Hello World!")
        out = subprocess.run([*uisge, "--stop", str(pidfile)], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert server.proc.wait(20) == 0
        assert not pidfile.exists() and not sock.exists()
        out = subprocess.run([*uisge, "--stop", str(pidfile)], capture_output=True, text=True, timeout=20)
        assert out.returncode == 1 and "does not exist" in out.stderr
    finally:
        server.stop()


def test_master_fifo_commands(tmp_path):
    fifo = tmp_path / "master.fifo"
    server = master(tmp_path, "--processes", "1", "--master-fifo", str(fifo))
    try:
        assert wait_for(fifo.exists)
        first = get(server.address(), "/pid")[1]
        with open(fifo, "w") as fh:
            fh.write("s\n")
        assert wait_for(lambda: "worker 1 (pid:" in server.log() and "accepting" in server.log())
        with open(fifo, "w") as fh:
            fh.write("w")
        assert wait_for(lambda: "reload complete" in server.log(), 20)
        assert wait_for(lambda: get(server.address(), "/pid")[1] != first)
        with open(fifo, "w") as fh:
            fh.write("q")
        assert server.proc.wait(20) == 0
        assert not fifo.exists()
    finally:
        server.stop()


LOG_LINE = re.compile(r"^\[pid: \d+\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 \(\) \{\d+ vars in \d+ bytes\} "
                      r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] GET /daemon => generated 12 bytes in \d+ msecs "
                      r"\(HTTP/1\.1 200\) \d+ headers in \d+ bytes \(1 switches on core 0\)$", re.M)


def test_daemonize_returns_the_shell_and_logs_to_the_file(tmp_path):
    log = tmp_path / "logs" / "uisge.log"  # the directory does not exist yet: it is created
    pidfile = tmp_path / "uisge.pid"
    port_probe = socket.socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    out = subprocess.run([sys.executable, "-m", "uisge", "--master", "--processes", "2", "--http-socket",
                          f"127.0.0.1:{port}", "--wsgi-file", str(APPS / "testapp.py"), "--daemonize", str(log),
                          "--pidfile", str(pidfile), "--vacuum"], capture_output=True, text=True, timeout=30,
                         cwd=str(tmp_path))
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        assert "serving in the background" in out.stderr
        pid = int(pidfile.read_text())
        assert get(("127.0.0.1", port), "/daemon") == (200, b"Hello World!")
        assert wait_for(lambda: LOG_LINE.search(log.read_text()), 5), log.read_text()
        assert f"spawned uisge master process (pid: {pid})" in log.read_text()
    finally:
        if pidfile.exists():
            subprocess.run([sys.executable, "-m", "uisge", "--stop", str(pidfile)], timeout=20)
            wait_for(lambda: not pidfile.exists(), 10)
    assert "goodbye to uisge." in log.read_text()


def test_daemonize_reports_a_failed_start(tmp_path):
    out = subprocess.run([sys.executable, "-m", "uisge", "--master", "--http-socket", "127.0.0.1:0", "--wsgi-file",
                          str(tmp_path / "missing.py"), "--daemonize", str(tmp_path / "u.log")],
                         capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
    assert out.returncode == 1
    assert "did not start" in out.stderr and "missing.py" in out.stderr


def test_lazy_apps_reload_picks_up_new_code_without_reexec(tmp_path):
    app = tmp_path / "versioned.py"
    app.write_text(VERSIONED_APP.format(version=1))
    server = master(tmp_path, "--processes", "2", "--lazy-apps", app=str(app))
    try:
        address = server.address()
        assert wait_for(lambda: get(address) == (200, b"version 1"))
        app.write_text(VERSIONED_APP.format(version=2))
        os.kill(server.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: "reload complete" in server.log(), 20), server.log()
        assert wait_for(lambda: get(address) == (200, b"version 2"))
        assert "binary reloading" not in server.log()
    finally:
        server.stop()


def test_a_worker_dying_at_boot_is_a_crash_loop_with_backoff(tmp_path):
    app = tmp_path / "flaky.py"
    # imports fine in the master (preloaded), but every worker dies as soon as it starts
    app.write_text("import os\n"
                   "def application(environ, start_response):\n"
                   "    start_response('200 OK', [])\n"
                   "    return [b'']\n"
                   "os.register_at_fork(after_in_child=lambda: os._exit(3))\n")
    server = master(tmp_path, "--processes", "1", app=str(app))
    try:
        assert wait_for(lambda: "crash loop" in server.log(), 15), server.log()
        spawned = server.log().count("spawned uisge worker")
        time.sleep(1.5)
        assert server.log().count("spawned uisge worker") <= spawned + 2  # backing off, not spinning
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_process_titles(tmp_path):
    pytest.importorskip("setproctitle")
    server = master(tmp_path, "--processes", "2", "--procname-prefix-spaced", "mysite")
    try:
        expected = {"mysite uisge master", "mysite uisge worker 1", "mysite uisge worker 2"}

        def titles() -> set[str]:
            # A worker is a child (forked with the master's title) a moment before it sets its own.
            return {Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
                    for pid in [server.proc.pid, *children(server.proc.pid)]}
        wait_for(lambda: titles() == expected)
        assert titles() == expected, titles()
    finally:
        server.stop()


def test_sigusr1_stats_and_sigterm_reload(tmp_path):
    server = master(tmp_path, "--processes", "2", "--sigterm-reload")
    try:
        assert wait_for(lambda: len(children(server.proc.pid)) == 2)
        os.kill(server.proc.pid, signal.SIGUSR1)
        assert server.wait_log("worker 2 (pid:")
        os.kill(server.proc.pid, signal.SIGTERM)  # uWSGI 2.0's meaning, asked for: a reload, not a stop
        assert wait_for(lambda: "reload complete" in server.log(), 20), server.log()
        assert server.proc.poll() is None
        assert get(server.address()) == (200, b"Hello World!")
    finally:
        server.stop()


def test_pidfile2_and_fifo_rewrite_and_chain(tmp_path):
    pid1, pid2, fifo = tmp_path / "a.pid", tmp_path / "b.pid", tmp_path / "m.fifo"
    server = master(tmp_path, "--processes", "2", "--pidfile", str(pid1), "--pidfile2", str(pid2),
                    "--master-fifo", str(fifo))
    try:
        assert wait_for(lambda: pid2.exists() and pid2.read_text().strip() == str(server.proc.pid))
        pid1.unlink()
        with open(fifo, "w") as fh:
            fh.write("P")
        assert wait_for(lambda: pid1.exists() and pid1.read_text().strip() == str(server.proc.pid))
        before = set(children(server.proc.pid))
        with open(fifo, "w") as fh:
            fh.write("c")
        assert wait_for(lambda: len(children(server.proc.pid)) == 2 and not (set(children(server.proc.pid)) & before),
                        20), server.log()[-2000:]
    finally:
        server.stop()


def test_pause_and_resume_with_uisge_pause(tmp_path):
    """`uisge --pause PIDFILE` (SIGTSTP) stops the workers accepting: a request waits in the backlog, is served
    once the second --pause resumes them; the stats show the paused workers."""
    import json
    import subprocess
    import sys

    from tests.integration.nginx import free_port

    pidfile = tmp_path / "u.pid"
    port = free_port()
    server = master(tmp_path, "--processes", "2", "--pidfile", str(pidfile), "--stats", f"127.0.0.1:{port}")
    try:
        address = server.address()
        assert wait_for(lambda: len(children(server.proc.pid)) == 2)
        pause = [sys.executable, "-m", "uisge", "--pause", str(pidfile)]
        assert subprocess.run(pause, capture_output=True, timeout=20).returncode == 0
        assert server.wait_log("*** PAUSE")

        def stats() -> dict:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            return json.loads(data)

        assert wait_for(lambda: [w["status"] for w in stats()["workers"]] == ["pause", "pause"])
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.settimeout(1.0)
        try:
            early = sock.recv(100)
        except socket.timeout:
            early = None
        assert early is None  # nobody accepts while paused (TCP_DEFER_ACCEPT: it waits in the backlog)
        assert subprocess.run(pause, capture_output=True, timeout=20).returncode == 0
        assert server.wait_log("resuming workers")
        sock.settimeout(10)
        status, _headers, body = read_response(sock)
        sock.close()
        assert status == 200 and int(body) in children(server.proc.pid)
        assert get(address, "/") == (200, b"Hello World!")
    finally:
        server.stop()
