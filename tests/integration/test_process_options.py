"""Process options uWSGI users set, run for real: max-fd (the open files limit of every process),
cpu-affinity (uWSGI's worker-to-CPU mapping), py-tracebacker (each worker's stacks on a unix socket, read
with --connect-and-read), http-var (vars added to requests on `http`), logger / req-logger files, and a
logger uisge does not offer refused at start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.integration.server import Server
from uisge.limits import affinity

APP = """\
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or 3))
    body = environ.get("FROM_ROUTER", "-").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def worker_pids(server: Server) -> dict[int, int]:
    return {int(w): int(p) for w, p in re.findall(r"spawned uisge worker (\d+) \(pid: (\d+)", server.log())}


def test_max_fd_cpu_affinity_tracebacker_and_http_var(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    server = Server(["--master", "--processes", "2", "--http", "127.0.0.1:0", "--wsgi-file", "app.py",
                     "--max-fd", "2048", "--cpu-affinity", "1", "--py-tracebacker", str(tmp_path / "tb"),
                     "--http-var", "FROM_ROUTER=yes"], cwd=str(tmp_path))
    try:
        host, port = server.address()
        assert server.wait_log("spawned uisge worker 2")
        assert "detected max file descriptor number: 2048" in server.log()
        cpus = os.cpu_count() or 1
        for wid, pid in worker_pids(server).items():
            with open(f"/proc/{pid}/limits") as f:
                assert re.search(r"Max open files\s+2048\s+2048", f.read())
            expected = affinity(wid, 1, cpus)
            assert server.wait_log(f"mapping worker {wid} to CPUs: {' '.join(map(str, expected))}")
            assert os.sched_getaffinity(pid) == set(expected)
            assert server.wait_log(f"python tracebacker for worker {wid} available on {tmp_path / 'tb'}{wid}")
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as resp:
            assert resp.read() == b"yes"  # http-var

        sleeper = threading.Thread(target=lambda: urllib.request.urlopen(f"http://{host}:{port}/sleep?4",
                                                                        timeout=20).read())
        sleeper.start()
        try:
            dumps = ""
            deadline = time.monotonic() + 10
            while "time.sleep(" not in dumps and time.monotonic() < deadline:
                dumps = ""
                for wid in (1, 2):
                    out = subprocess.run([sys.executable, "-m", "uisge", "--connect-and-read", f"{tmp_path / 'tb'}{wid}"],
                                         capture_output=True, text=True, timeout=10, check=False)
                    assert out.returncode == 0, out.stderr
                    text = out.stdout + out.stderr
                    assert text.startswith("*** uWSGI Python tracebacker output ***"), text
                    assert "thread_id = uWSGITraceBacker" in text
                    dumps += text
            # the busy worker's main thread, inside the app
            assert re.search(r"thread_id = MainThread filename = \S+app\.py lineno = 5 function = application "
                             r"line = time\.sleep", dumps), dumps
        finally:
            sleeper.join()
    finally:
        server.stop()


def test_logger_and_req_logger_files(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    main, requests = tmp_path / "main.log", tmp_path / "req.log"
    proc = subprocess.Popen([sys.executable, "-m", "uisge", "--http", "127.0.0.1:0", "--wsgi-file", "app.py",
                             "--logger", f"file:logfile={main},maxsize=1000000", "--req-logger", f"file:{requests}"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (main.exists() and "spawned uisge worker" in main.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        port = re.search(r"bound to 127\.0\.0\.1:(\d+)", main.read_text()).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=10) as resp:
            assert resp.status == 200
        while not (requests.exists() and "GET /hello =>" in requests.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "GET /hello" not in main.read_text()  # request lines have their own file
        assert "*** Starting uisge" in main.read_text() and "Starting" not in requests.read_text()
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.parametrize(("args", "said"), [
    (["--logger", "syslog:myapp"], "logger = syslog:myapp: the syslog logger is not offered by uisge"),
    (["--optimize", "1"], "`optimize` is not supported by uisge: uisge runs in the Python that started it"),
    (["--ksm"], "`ksm` is not supported by uisge"),
    (["--memory-limit", "512"], "`memory-limit` is not supported by uisge: it is not an option of uWSGI 2.0"),
], ids=["syslog-logger", "optimize", "ksm", "memory-limit"])
def test_what_uisge_cannot_honour_is_refused_at_start(tmp_path, args, said):
    (tmp_path / "app.py").write_text(APP)
    out = subprocess.run([sys.executable, "-m", "uisge", "--http", "127.0.0.1:0", "--wsgi-file", "app.py", *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 1, out.stderr
    assert said in out.stderr, out.stderr
