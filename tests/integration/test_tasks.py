"""Background and scheduled work with real processes (issue 8): the `uwsgi` module inside the app,
uwsgidecorators' @timer, @cron, @spool, @mulefunc and @postfork, command crons, the spooler surviving
a kill -9 of the whole instance, and attach-daemon. Every job writes a line to a file, so the tests
count runs and see which process ran them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.server import APPS, Server

APP = str(APPS / "tasksapp.py")


def start(tmp_path: Path, *args: str, env: dict | None = None) -> Server:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--master", "--disable-logging", *args],
                  cwd=str(tmp_path), env={"TASKS_OUT": str(out), **(env or {})})


def get(server: Server, path: str) -> bytes:
    host, port = server.address()
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as resp:
        return resp.read()


def runs(tmp_path: Path, name: str) -> list[dict]:
    path = tmp_path / "out" / f"{name}.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        stamp, _, rest = line.partition(" ")
        fields = dict(part.split("=", 1) for part in rest.split()[1:] if "=" in part)
        out.append({"at": float(stamp), **fields})
    return out


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.parametrize("lazy", [False, True], ids=["preloaded", "lazy-apps"])
def test_timer_fires_once_per_second_not_once_per_worker(tmp_path, lazy):
    server = start(tmp_path, "--processes", "3", *(["--lazy-apps"] if lazy else []), env={"TASKS_TIMER": "1"})
    try:
        time.sleep(4.6)
        fired = runs(tmp_path, "timer")
    finally:
        server.stop()
    assert 3 <= len(fired) <= 5, fired
    gaps = [b["at"] - a["at"] for a, b in zip(fired, fired[1:])]
    assert all(0.7 < g < 1.3 for g in gaps), gaps  # one run a second, never one per worker
    assert all(r["worker"] in ("1", "2", "3") and r["mule"] == "0" for r in fired)  # in "any worker"
    if lazy:
        assert server.log().count("registered timer for signal") == 1  # the master kept one of the three


def test_cron_runs_once_per_minute_across_workers_and_a_reload(tmp_path):
    marker = tmp_path / "out" / "command-cron.log"
    server = start(tmp_path, "--processes", "3", "--cron", f"-1 -1 -1 -1 -1 echo ran >> {marker}",
                   "--unique-cron", "-1 -1 -1 -1 -1 sleep 30", env={"TASKS_CRON": "1"})
    try:
        assert wait_for(lambda: runs(tmp_path, "cron"), 5)
        assert server.wait_log('running "sleep 30" (pid ', 5)
        sleeper = int(server.log().split('running "sleep 30" (pid ')[1].split(")")[0])
        os.kill(server.proc.pid, signal.SIGHUP)  # a reload inside the same minute must not run it again
        assert server.wait_log("reload complete", 20)
        assert _alive(sleeper)  # the re-exec'd master kept it running, and knows it does (unique-cron)
        time.sleep(2.5)
        python_runs = runs(tmp_path, "cron")
        command_runs = marker.read_text().splitlines() if marker.exists() else []
        log = server.log()
    finally:
        server.stop()
    minutes = {int(r["at"] // 60) for r in python_runs}
    assert len(python_runs) == len(minutes), python_runs  # exactly one run per minute that passed
    assert 1 <= len(command_runs) <= len(minutes) + 1
    assert '[uwsgi-cron] running "echo ran' in log and "exited after" in log
    assert log.count('running "sleep 30"') == 1  # unique-cron: not again while the first still runs


def test_spooled_jobs_survive_kill_9_of_the_whole_instance(tmp_path):
    spool = tmp_path / "spool"
    args = ("--processes", "2", "--spooler", str(spool), "--spooler-frequency", "1")
    server = start(tmp_path, *args, env={"TASKS_SLOW": "0.05"})
    try:
        names = [get(server, f"/spool?{n}") for n in range(1, 101)]
        assert all(name.startswith(str(spool).encode()) for name in names)
        assert wait_for(lambda: len(runs(tmp_path, "spool")) >= 30, 20)
        victims = [server.proc.pid, *descendants(server.proc.pid)]
        for pid in victims:  # a crash: nobody gets to finish anything
            os.kill(pid, signal.SIGKILL)
        server.proc.wait(10)
    finally:
        server.stop()
    done_before = len(runs(tmp_path, "spool"))
    left = [p for p in spool.iterdir() if p.name.startswith("uwsgi_spoolfile_on_")]
    assert 0 < len(left) <= 100 - done_before + 1  # every unfinished job is still on disk, whole
    assert not [p for p in spool.iterdir() if p.name.endswith(".tmp")]
    server = start(tmp_path, *args)
    try:
        assert wait_for(lambda: {r["n"] for r in runs(tmp_path, "spool")} >= {str(n) for n in range(1, 101)}, 30)
        get(server, "/spool?fail-once")  # raises the first time: kept and retried
        assert wait_for(lambda: [r for r in runs(tmp_path, "spool") if r["n"] == "fail-once"][1:], 15)
        log = server.log()
    finally:
        server.stop()
    counts: dict[str, int] = {}
    for r in runs(tmp_path, "spool"):
        counts[r["n"]] = counts.get(r["n"], 0) + 1
    twice = [n for n, c in counts.items() if c > 1 and n != "fail-once"]
    assert len(twice) <= 1, twice  # only the job running at the moment of the kill may run again
    assert "first attempt fails on purpose" in log and "retried at the next scan" in log
    assert not [p for p in spool.iterdir() if p.name.startswith("uwsgi_spoolfile_on_")]


def test_mulefunc_runs_in_the_mule_and_postfork_everywhere(tmp_path):
    server = start(tmp_path, "--processes", "2", "--mule", "--spooler", str(tmp_path / "spool"))
    try:
        assert get(server, "/mule?hello") == b"ok"
        assert wait_for(lambda: runs(tmp_path, "mulefunc"), 5)
    finally:
        server.stop()
    log = server.log()  # whole: the master may say "spawned uisge mule 1" after the mule already ran the call
    ran = runs(tmp_path, "mulefunc")[0]
    assert ran["mule"] == "1" and ran["worker"] == "0" and ran["tag"] == "hello"
    assert f"spawned uisge mule 1 (pid: {ran['pid']})" in log
    forks = runs(tmp_path, "postfork")
    assert sorted((r["worker"], r["mule"]) for r in forks) == [("0", "0"), ("0", "1"), ("1", "0"), ("2", "0")]


def test_the_uwsgi_module_inside_the_app(tmp_path):
    server = start(tmp_path, "--processes", "2", "--cache2", "name=shared,items=20", "--disable-logging=false",
                   "--log-format", "%(method) %(uri) user=%(user_id)")
    try:
        def info_now() -> dict:
            return eval(get(server, "/info"))  # noqa: S307 - our own test app's repr()

        assert wait_for(lambda: info_now()["workers"] == 2, 10)  # worker 2 may still be starting
        info = info_now()
        assert info["worker"] in (1, 2) and info["masterpid"] == server.proc.pid and info["numproc"] == 2
        assert info["opt_master"] is True and info["version"] == b"2.0.31" and info["workers"] == 2
        assert get(server, "/cache?colour=green") == b"b'green'"
        assert all(get(server, "/cache?colour") == b"b'green'" for _ in range(8))  # every worker sees it
        assert get(server, "/lock") == b"True"
        assert get(server, "/logvar") == b"42"
        assert server.wait_log("GET /logvar user=42")
        assert b"uwsgi.websocket_handshake() is not offered by uisge" in get(server, "/missing")
    finally:
        server.stop()


def test_file_monitor_rb_timer_mule_program_and_reload(tmp_path):
    watched = tmp_path / "watched.txt"
    watched.write_text("1")
    server = start(tmp_path, "--mule", str(APPS / "mule_echo.py"), env={"TASKS_FILEMON": str(watched)})
    try:
        time.sleep(1.5)
        watched.write_text("22")
        assert wait_for(lambda: runs(tmp_path, "filemon"), 5)  # the master saw the change
        assert get(server, "/mulemsg?hello-mule") == b"True"
        assert wait_for(lambda: runs(tmp_path, "mulemsg"), 5)
        time.sleep(2)
        assert len(runs(tmp_path, "rbtimer")) == 2  # iterations=2, then never again
        assert get(server, "/reload") == b"True"  # uwsgi.reload(): the checked graceful reload
        assert server.wait_log("reload complete", 20)
    finally:
        server.stop()
    got = runs(tmp_path, "mulemsg")[0]
    assert got["msg"] == "hello-mule" and got["mule"] == "1"
    assert len(runs(tmp_path, "filemon")) == 1


def test_attach_daemon_is_respawned_and_stopped_with_the_server(tmp_path):
    pids = tmp_path / "daemon.pids"
    server = start(tmp_path, "--attach-daemon", f"echo $$ >> {pids}; exec sleep 300")
    try:
        assert wait_for(lambda: pids.exists() and pids.read_text().split(), 10)
        first = int(pids.read_text().split()[0])
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: len(pids.read_text().split()) >= 2, 10)
        second = int(pids.read_text().split()[1])
        os.kill(second, 0)  # running
    finally:
        server.stop()
    assert wait_for(lambda: not _alive(second), 5)
    assert "[uwsgi-daemons] respawning" in server.log() and "stopping daemon" in server.log()


def test_reload_mercy_bounds_a_daemon_that_ignores_its_stop_signal(tmp_path):
    pids = tmp_path / "stubborn.pids"
    server = start(tmp_path, "--reload-mercy", "1", "--attach-daemon",
                   f"trap '' TERM; echo $$ >> {pids}; while true; do sleep 0.1; done")
    assert wait_for(lambda: pids.exists() and pids.read_text().split(), 10)
    daemon = int(pids.read_text().split()[0])
    os.kill(server.proc.pid, signal.SIGTERM)
    started = time.monotonic()
    assert server.proc.wait(15) == 0
    took = time.monotonic() - started
    assert 1 <= took < 2.5, took  # reload-mercy 1 s, not the default 3 s
    assert "still running after 1 s: SIGKILL" in server.log()
    assert wait_for(lambda: not _alive(daemon), 5)


def test_graceful_stop_ends_spooler_and_mules_at_once(tmp_path):
    server = start(tmp_path, "--spooler", str(tmp_path / "spool"), "--mules", "2")
    os.kill(server.proc.pid, signal.SIGTERM)
    started = time.monotonic()
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5  # nobody waits out spooler-frequency (30 s)


def test_uwsgidecorators_needs_the_master(tmp_path):
    (tmp_path / "out").mkdir()
    proc = subprocess.run([sys.executable, "-m", "uisge", "--http-socket", "127.0.0.1:0", "--wsgi-file", APP],
                          cwd=str(tmp_path), env={**os.environ, "TASKS_OUT": str(tmp_path / "out")},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 22
    assert "you have to enable the uWSGI master process to use this module (set `master = true`)" in proc.stderr


def test_import_uwsgi_fails_outside_a_server():
    proc = subprocess.run([sys.executable, "-c", "import uwsgi"], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "No module named 'uwsgi'" in proc.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_touch_mules_and_spoolers_reload_replace_them(tmp_path):
    mules_trigger, spoolers_trigger = tmp_path / "mules.touch", tmp_path / "spoolers.touch"
    mules_trigger.write_text("")
    spoolers_trigger.write_text("")
    server = start(tmp_path, "--mule", "--spooler", str(tmp_path / "spool"), "--touch-mules-reload",
                   str(mules_trigger), "--touch-spoolers-reload", str(spoolers_trigger))
    try:
        assert server.wait_log("spawned uisge mule 1") and server.wait_log("spawned the uisge spooler")
        os.utime(mules_trigger)
        assert server.wait_log("mules reload !!!", 10)
        assert wait_for(lambda: server.log().count("spawned uisge mule 1") == 2)
        assert "mule 1 (pid: " in server.log() and "finished for the reload" in server.log()
        os.utime(spoolers_trigger)
        assert server.wait_log("spoolers reload !!!", 10)
        assert wait_for(lambda: server.log().count("spawned the uisge spooler") == 2, 40)
        assert get(server, "/spool?after-reload") .startswith(str(tmp_path).encode())
        assert wait_for(lambda: any(r.get("n") == "after-reload" for r in runs(tmp_path, "spool")), 20)
    finally:
        server.stop()


def test_spooler_external_is_written_to_but_run_elsewhere(tmp_path):
    external = tmp_path / "elsewhere"
    app = tmp_path / "spoolapp.py"
    app.write_text("import uwsgi\n"
                   "def application(environ, start_response):\n"
                   "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [uwsgi.spool({b'job': b'x'})]\n")
    server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--master", "--spooler-external",
                     str(external)], cwd=str(tmp_path))
    try:
        path = get(server, "/").decode()
        assert path.startswith(str(external)) and os.path.exists(path)  # written, and nobody here runs it
        assert "spooler" not in "".join(l for l in server.log().splitlines(True) if l.startswith("spawned"))
    finally:
        server.stop()


def test_pyrun_runs_a_script_with_the_uwsgi_module(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys, uwsgi\nprint('ran', __name__, isinstance(uwsgi.version, bytes))\nsys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-m", "uisge", "--pyrun", str(script)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 3 and proc.stdout.strip() == "ran __main__ True", proc.stderr


def test_unique_cron_is_not_started_again_while_a_run_carried_across_a_reexec_is_alive(tmp_path):
    """What a re-exec'd master is told (scheduler state) keeps a unique-cron from starting twice."""
    from uisge.tasks.scheduler import Scheduler
    from uisge.config.load import load

    opts = load(["--unique-cron", "-1 -1 -1 -1 -1 sleep 20"], first_index=0)
    first = Scheduler.from_options(opts, lambda num, target: None)
    first._run(first.commands[0])
    (pid,) = first.running
    try:
        second = Scheduler.from_options(opts, lambda num, target: None, carried=first.state())
        assert list(second.running) == [pid]
        second._run(second.commands[0])
        assert list(second.running) == [pid]  # skipped: the carried run is alive
    finally:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    third = Scheduler.from_options(opts, lambda num, target: None, carried=first.state())
    assert third.running == {}  # a dead pid is not carried
