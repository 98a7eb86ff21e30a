"""The master's clock (reference §7.2, §7.6): uWSGI timers, rb-timers, signal crons and file monitors
raise uWSGI signals; `cron` / `cron2` / `unique-cron` run shell commands in their own process group.

Each timer, cron and monitor is kept once, keyed by what it is (signal, interval, rule, path), so the
same registration from several lazy-loaded workers, or again after a reload, never doubles a job.
A cron entry runs at most once per minute, and the minute it last ran survives the master's re-exec.
Ticked by the master about once a second; it must never wait for a command to finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from uisge.tasks import cron
from uisge.tasks.daemons import alive
from uisge.tasks.runtime import say

MAX_TIMERS = 64


@dataclass
class Timer:
    num: int
    secs: float
    next_at: float
    left: int = 0  # rb-timer iterations still to fire; 0 = for ever


@dataclass
class Running:
    cmd: cron.CronCommand
    pid: int
    started: float
    killed: bool = False


@dataclass
class Scheduler:
    route: Callable[[int, str | None], None]
    commands: list[cron.CronCommand] = field(default_factory=list)
    timers: dict[str, Timer] = field(default_factory=dict)
    crons: dict[str, tuple[cron.CronRule, int]] = field(default_factory=dict)
    monitors: dict[str, tuple[int, tuple | None]] = field(default_factory=dict)
    last_minute: dict[str, int] = field(default_factory=dict)  # entry key -> minute (epoch // 60) it last ran
    running: dict[int, Running] = field(default_factory=dict)
    cron_harakiri: int = 0
    # tasks-backend (tasks/group.py's Group): timers and crons fire only on the instance holding the group's
    # lease, and a cron's minute is claimed group-wide; None: this instance alone
    gate: Any = None

    @classmethod
    def from_options(cls, opts, route, carried: dict | None = None) -> "Scheduler":
        sched = cls(route, cron_harakiri=int(opts.cron_harakiri or 0))
        for spec in opts.cron:
            sched.commands.append(cron.parse_cron(spec, "cron", harakiri=sched.cron_harakiri))
        for spec in opts.unique_cron:
            sched.commands.append(cron.parse_cron(spec, "unique-cron", unique=True, harakiri=sched.cron_harakiri))
        for spec in opts.cron2:
            sched.commands.append(cron.parse_cron2(spec, harakiri=sched.cron_harakiri))
        for command in sched.commands:
            say(f'[uwsgi-cron] command "{command.command}" registered as cron task')
        for spec in opts.timer:
            num, secs = _timer_option(spec)
            sched.add({"op": "timer", "num": num, "secs": secs})
        if carried:
            sched.last_minute.update(carried.get("last_minute", {}))
            by_text = {command.text: command for command in sched.commands}
            now = time.monotonic()
            for run in carried.get("running", ()):
                command = by_text.get(run["text"])
                if command is not None and alive(run["pid"]):  # still ours: reaped here when it ends
                    sched.running[run["pid"]] = Running(command, run["pid"], now - run["age"])
        return sched

    def state(self) -> dict:
        """What a re-exec'd master needs: the minute each entry last ran, and the commands still running."""
        now = time.monotonic()
        return {"last_minute": self.last_minute,
                "running": [{"pid": r.pid, "text": r.cmd.text, "age": now - r.started} for r in self.running.values()]}

    # -- registrations (from the uwsgi module, in any process)
    def add(self, entry: dict) -> None:
        op, num = entry["op"], int(entry["num"])
        key = json.dumps(entry, sort_keys=True)
        now = time.monotonic()
        if op in ("timer", "rbtimer"):
            if key in self.timers:
                return
            if len(self.timers) >= MAX_TIMERS:
                say(f"you can register max {MAX_TIMERS} timers !!! (signal {num} every {entry['secs']} s refused)")
                return
            secs = float(entry["secs"])
            if secs <= 0:
                say(f"[uwsgi-timer] signal {num}: an interval of {secs} s is not a timer; refused")
                return
            self.timers[key] = Timer(num, secs, now + secs, int(entry.get("iterations", 0) or 0))
            say(f"[uwsgi-timer] registered {'rb-' if op == 'rbtimer' else ''}timer for signal {num} every {secs:g} s")
        elif op == "cron":
            if key not in self.crons:
                self.crons[key] = (cron.rule(*entry["rule"]), num)
                say(f"[uwsgi-cron] signal {num} registered as cron task {entry['rule']}")
        elif op == "filemon":
            if key not in self.monitors:
                self.monitors[key] = (num, _file_state(entry["path"]))
                say(f"[uwsgi-filemon] watching {entry['path']} for signal {num}")

    # -- the clock
    def tick(self, mono: float, wall: float) -> None:
        for key, timer in list(self.timers.items()):
            if mono >= timer.next_at:
                timer.next_at = max(timer.next_at + timer.secs, mono + timer.secs / 2)
                if self.gate is not None and not self.gate.leading():
                    continue  # another instance of the group fires it (an interval missed is skipped, not owed)
                self.route(timer.num, None)
                if timer.left:
                    timer.left -= 1
                    if timer.left == 0:
                        del self.timers[key]
        minute = int(wall // 60)
        local = time.localtime(wall)
        for key, (rule, num) in self.crons.items():
            if rule.matches(local) and self.last_minute.get(key) != minute:
                self.last_minute[key] = minute
                if self._ours(key, minute):
                    self.route(num, None)
        for key, (num, before) in list(self.monitors.items()):
            path = json.loads(key)["path"]
            now_state = _file_state(path)
            if now_state != before:
                self.monitors[key] = (num, now_state)
                self.route(num, None)
        for command in self.commands:
            key = "cmd:" + command.text
            if command.rule.matches(local) and self.last_minute.get(key) != minute:
                self.last_minute[key] = minute
                if self._ours(key, minute):
                    self._run(command)
        for run in self.running.values():
            if run.cmd.harakiri and not run.killed and mono - run.started > run.cmd.harakiri:
                run.killed = True
                say(f'*** HARAKIRI ON CRON "{run.cmd.command}" (pid: {run.pid}) ***')
                try:
                    os.killpg(run.pid, signal.SIGKILL)
                except OSError:
                    pass

    def _ours(self, key: str, minute: int) -> bool:
        """Whether this instance runs a cron entry's `minute`: always alone; in a group, when it holds the
        lease and nobody ran that minute yet (a leader that took over mid-minute does not run it again)."""
        if self.gate is None:
            return True
        if not self.gate.leading():
            return False
        return self.gate.claim(f"cron:{hashlib.sha1(key.encode()).hexdigest()[:16]}:{minute}", 180)

    def _run(self, command: cron.CronCommand) -> None:
        if command.unique and any(r.cmd is command for r in self.running.values()):
            say(f'[uwsgi-cron] unique cron "{command.command}" is still running; this run is skipped')
            return
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command.command], start_new_session=True,
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            say(f'[uwsgi-cron] could not run "{command.command}": {exc}')
            return
        self.running[proc.pid] = Running(command, proc.pid, time.monotonic())
        proc.returncode = 0  # reaped by the master's waitpid(); keep Popen from reaping it again
        say(f'[uwsgi-cron] running "{command.command}" (pid {proc.pid})')

    def reaped(self, pid: int, status: int) -> bool:
        run = self.running.pop(pid, None)
        if run is None:
            return False
        took = int(time.monotonic() - run.started)
        code = os.waitstatus_to_exitcode(status)
        how = f"exited after {took} second(s)" if code >= 0 else f"was killed by signal {-code} after {took} second(s)"
        say(f'[uwsgi-cron] command "{run.cmd.command}" running with pid {pid} {how}'
            + (f" (exit code {code})" if code > 0 else ""))
        return True

    def stop(self) -> None:
        for run in self.running.values():
            try:
                os.killpg(run.pid, signal.SIGTERM)
            except OSError:
                pass


def _timer_option(spec: str) -> tuple[int, float]:
    from uisge.errors import UisgeError

    parts = spec.split()
    try:
        num, secs = int(parts[0]), float(parts[1])
        if len(parts) != 2 or not 0 <= num < 256:
            raise ValueError
    except (ValueError, IndexError):
        raise UisgeError(f"invalid `timer = {spec}`: expected `SIGNAL SECONDS` (signal 0..255), e.g. "
                         f"`timer = 17 60` raises signal 17 every minute") from None
    return num, secs


def _file_state(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
