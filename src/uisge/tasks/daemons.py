"""Attached daemons (reference §7.7): commands the master runs beside the workers and respawns when
they die. `attach-daemon CMD` is a child of the master in its own session, stopped (its whole process
group, SIGTERM then SIGKILL after reload-mercy) on reload and stop. `smart-attach-daemon PIDFILE CMD`
is followed through its pidfile and left running across reloads; `smart-attach-daemon2` is the same
for a command that does not daemonize itself (uisge writes the pidfile). `attach-daemon2` takes
`key=value` pairs. A daemon that keeps dying at once is respawned with a growing delay (throttle): the
decision is master/policy.py's daemon_died(); this module gathers the facts (pidfiles, touches) and acts.
Ticked by the master; waits only while stopping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

from uisge.errors import UisgeError
from uisge.master.policy import Say, daemon_died
from uisge.tasks.runtime import say

MERCY = 3.0  # seconds a daemon gets after its stop signal before SIGKILL: `reload-mercy`'s default, as uWSGI


@dataclass
class Daemon:
    cmd: str
    pidfile: str | None = None  # smart: followed through this file
    daemonize: bool = False  # smart2: we write the pidfile
    control: bool = False  # the instance stops when it dies
    touch: list[str] = field(default_factory=list)
    stopsignal: int = signal.SIGTERM
    chdir: str | None = None
    max_throttle: float = 30.0
    pid: int | None = None
    spawned: float = 0.0
    next_at: float = 0.0
    throttle: float = 0.0
    touched: dict = field(default_factory=dict)

    @property
    def smart(self) -> bool:
        return self.pidfile is not None


def parse(opts) -> list[Daemon]:
    out = [Daemon(cmd) for cmd in opts.attach_daemon]
    for option, daemonize in (("smart_attach_daemon", False), ("smart_attach_daemon2", True)):
        for spec in getattr(opts, option):
            pidfile, _, cmd = spec.strip().partition(" ")
            if not cmd.strip():
                raise UisgeError(f"`{option.replace('_', '-')} = {spec}`: expected `PIDFILE COMMAND`")
            out.append(Daemon(cmd.strip(), pidfile=pidfile, daemonize=daemonize))
    for spec in opts.attach_daemon2:
        out.append(_parse2(spec))
    return out


def _parse2(spec: str) -> Daemon:
    d = Daemon("")
    for pair in _split_pairs(spec):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key in ("cmd", "command", "exec"):
            d.cmd = value
        elif key == "pidfile":
            d.pidfile = value
        elif key == "daemonize":
            d.daemonize = value not in ("0", "false", "")
        elif key == "control":
            d.control = value not in ("0", "false", "")
        elif key == "touch":
            d.touch = value.split(";")
        elif key == "stopsignal":
            d.stopsignal = int(value) if value.isdigit() else signal.Signals["SIG" + value.upper().removeprefix("SIG")]
        elif key == "chdir":
            d.chdir = value
        elif key in ("max_throttle", "throttle"):
            d.max_throttle = float(value)
        elif key == "freq":
            continue
        else:
            raise UisgeError(f"`attach-daemon2 = {spec}`: {key!r} is not supported by uisge (supported: cmd, pidfile, "
                             f"daemonize, control, touch, stopsignal, chdir, max_throttle, freq)")
    if not d.cmd:
        raise UisgeError(f"`attach-daemon2 = {spec}`: `cmd=` is required")
    return d


def _split_pairs(spec: str) -> list[str]:
    """key=value pairs split on commas, except inside the command (everything after cmd= up to `,key=`)."""
    out: list[str] = []
    for part in spec.split(","):
        if out and "=" not in part.split(" ")[0]:
            out[-1] += "," + part
        else:
            out.append(part)
    return out


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


class Daemons:
    def __init__(self, daemons: list[Daemon], on_control_death) -> None:
        self.daemons = daemons
        self.on_control_death = on_control_death
        self.stopping = False

    def tick(self, now: float) -> None:
        if self.stopping:
            return
        for d in self.daemons:
            for path in d.touch:
                mtime = _mtime(path)
                if d.touched.setdefault(path, mtime) != mtime:
                    d.touched[path] = mtime
                    say(f'[uwsgi-daemons] "{d.cmd}" ({path} touched): restarting')
                    self._signal(d, d.stopsignal)
            if d.smart:
                pid = _read_pid(d.pidfile)
                if pid is not None and alive(pid):
                    d.pid = pid
                    continue
                if d.pid is not None and now - d.spawned < 10 and alive(d.pid) and not d.daemonize:
                    continue  # started, not yet written its pidfile
                if now >= d.next_at:
                    self._spawn(d, now)
            elif d.pid is None and now >= d.next_at:
                self._spawn(d, now)

    def _spawn(self, d: Daemon, now: float) -> None:
        again = d.spawned > 0
        say(f'[uwsgi-daemons] {"respawning" if again else "spawning"} "{d.cmd}" (uid: {os.getuid()} gid: {os.getgid()})')
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", d.cmd] if not d.daemonize else ["/bin/sh", "-c", "exec " + d.cmd],
                                    start_new_session=True, stdin=subprocess.DEVNULL, cwd=d.chdir)
        except OSError as exc:
            say(f'[uwsgi-daemons] could not run "{d.cmd}": {exc}; trying again in 5 s')
            d.next_at = now + 5
            return
        proc.returncode = 0  # reaped by the master's waitpid()
        d.pid = proc.pid
        d.spawned = now
        if d.daemonize and d.pidfile:
            try:
                with open(d.pidfile, "w") as fh:
                    fh.write(f"{proc.pid}\n")
            except OSError as exc:
                say(f"[uwsgi-daemons] could not write {d.pidfile}: {exc}")

    def reaped(self, pid: int, status: int, now: float) -> bool:
        for d in self.daemons:
            if d.pid == pid:
                break
        else:
            return False
        if self.stopping:
            return True
        d.pid = None
        if d.smart and not d.daemonize:
            return True  # it daemonized (the foreground part left): its pidfile tells the rest
        actions, next_at, d.throttle = daemon_died(d.cmd, pid, os.waitstatus_to_exitcode(status), now - d.spawned,
                                                   d.throttle, d.max_throttle, d.control, now)
        for action in actions:
            if isinstance(action, Say):
                say(action.text)
        if next_at is None:
            self.on_control_death()
        else:
            d.next_at = next_at
        return True

    def _signal(self, d: Daemon, sig: int) -> None:
        if d.pid is None:
            return
        try:
            os.killpg(d.pid, sig)
        except OSError:
            try:
                os.kill(d.pid, sig)
            except OSError:
                pass

    def stop(self, mercy: float, reload: bool) -> None:
        """Stop the daemons (on reload the smart ones stay); waits up to `mercy`, then SIGKILL."""
        self.stopping = True
        waiting = []
        for d in self.daemons:
            if d.pid is None or (reload and d.smart):
                continue
            say(f"[uwsgi-daemons] stopping daemon (pid: {d.pid}): {d.cmd}")
            self._signal(d, d.stopsignal)
            waiting.append(d)
        deadline = time.monotonic() + mercy
        while waiting and time.monotonic() < deadline:
            for d in list(waiting):
                try:
                    pid, _ = os.waitpid(d.pid, os.WNOHANG)
                except ChildProcessError:
                    pid = 0  # not our child (a smart daemon that daemonized): watch it by pid
                if pid == d.pid or not alive(d.pid):
                    waiting.remove(d)
            time.sleep(0.05)
        for d in waiting:
            say(f"[uwsgi-daemons] daemon (pid: {d.pid}) still running after {mercy:g} s: SIGKILL")
            self._signal(d, signal.SIGKILL)
            try:
                os.waitpid(d.pid, 0)
            except ChildProcessError:
                pass


def _mtime(path: str):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
