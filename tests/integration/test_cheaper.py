"""cheaper with real processes: one worker when idle, more under load, back down when the load stops, no
failed request throughout; the stats JSON and the real uwsgitop show the retired workers as `cheap`."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from tests.integration.nginx import free_port
from tests.integration.test_health import Load
from tests.integration.test_master import children, get, master, wait_for
from tests.integration.test_stats import Tmux, read_stats


def statuses(port: int) -> list[str]:
    return [w["status"] for w in read_stats(("127.0.0.1", port))["workers"]]


def test_spare_grows_to_processes_under_load_and_back_to_cheaper_when_idle(tmp_path):
    port = free_port()
    server = master(tmp_path, "--processes", "4", "--cheaper", "1", "--cheaper-initial", "1", "--cheaper-step", "1",
                    "--cheaper-overload", "1", "--stats", f"127.0.0.1:{port}")
    top = None
    try:
        address = server.address()
        pid = server.proc.pid
        assert wait_for(lambda: len(children(pid)) == 1)
        assert statuses(port)[1:] == ["cheap", "cheap", "cheap"]
        started = time.monotonic()
        load = Load(address, "/sleep?0.5", threads=4)
        most = 1
        while time.monotonic() - started < 25 and most < 4:
            # serving workers, as the stats count them: a retiring worker still finishing is not one of them
            most = max(most, sum(status != "cheap" for status in statuses(port)))
            time.sleep(0.2)  # a sampling period, not a wait for a condition
        grew_in = time.monotonic() - started
        load.stop()
        assert most == 4, server.log()[-3000:]
        assert load.failures == [], load.failures[:5]
        assert "cheaper: spawning worker 4" in server.log()
        idle_since = time.monotonic()
        assert wait_for(lambda: len(children(pid)) == 1, 30), server.log()[-2000:]
        shrank_in = time.monotonic() - idle_since
        assert sorted(statuses(port)).count("cheap") == 3
        assert "is idle; retiring it" in server.log()
        assert get(address, "/") == (200, b"Hello World!")
        uwsgitop = shutil.which("uwsgitop") or os.path.join(os.path.dirname(sys.executable), "uwsgitop")
        if not os.path.exists(uwsgitop):
            pytest.fail("uwsgitop is not installed: it is in the [test] extras")
        top = Tmux(f"{uwsgitop} 127.0.0.1:{port}", "uisge-cheaper-top")
        screen = wait_for(lambda: top.screen().count("cheap") == 3 and top.screen(), 15)
        assert screen, top.screen()
        print(f"cheaper: 1 -> 4 workers in {grew_in:.1f} s of load, back to 1 in {shrank_in:.1f} s")
    finally:
        if top is not None:
            top.close()
        server.stop()


def test_cheaper_refuses_a_minimum_not_below_processes(tmp_path):
    server = master(tmp_path, "--processes", "2", "--cheaper", "2")
    try:
        assert server.proc.wait(20) != 0
        assert "invalid cheaper value: must be lower than processes" in server.log()
    finally:
        server.stop()
