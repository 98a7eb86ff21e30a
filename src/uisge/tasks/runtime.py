"""The process-wide state behind the `uwsgi` module: which process this is (master, worker N, mule N,
spooler), the uWSGI signal handlers it holds, and the channels to the others (reference §7.2).

Signals: a handler registered in the master (at app import, before fork) is inherited by every
process; one registered later stays in the registering process, as in uWSGI. Either way the master
learns the signal's target, because it is the master that routes every raised signal and fires
every timer and cron. Timers, crons and file monitors registered by several workers (lazy-apps) are
kept once, keyed by what they are, so a job runs once per interval, not once per worker.
This module must not fork, block or touch the request path.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from typing import Any, Callable

from uisge import logfile
from uisge.tasks.channels import Channels

MAX_SIGNALS = 256


say = logfile.say


class Runtime:
    def __init__(self) -> None:
        self.role = "none"  # master | worker | mule | spooler | single (no master)
        self.worker_id = 0
        self.mule_id = 0
        self.spooler_directory = ""  # in a spooler process: its directory
        self.masterpid = 0
        self.opts = None
        self.channels: Channels | None = None
        self.handlers: dict[int, tuple[str, Callable]] = {}
        self.targets: dict[int, str] = {}  # master: signal -> target, from every process's registrations
        self.pending: list[dict] = []  # master: timers/crons/monitors registered before the scheduler ran
        self.started_on = int(time.time())
        self.command: str | None = None  # `pyrun` beside spoolers/mules: the script worker 1 runs (command mode)
        self.ready = False  # uwsgi.ready(): the master has spawned its processes (a child is born into it)
        self.mule_ids: list[int] = []
        self.farms: dict[str, list[int]] = {}
        self.spooler_dirs: list[str] = []  # what uwsgi.spool() may write to: ours, then `spooler-external` ones
        self.external_spoolers: set[str] = set()  # run by another instance: no spooler process, no channel here
        self.signals_received: list[int] = []
        self.last_signal = 0
        self.control = None  # a worker's end of its control socket with the master (uwsgi.signal_wait reads it)
        self.control_backlog = b""  # master messages signal_wait read but does not handle: the worker's loop does
        self.request_count = lambda: 0  # set by the worker
        self.total_requests = lambda: 0  # set by the worker (scoreboard sum when stats are on)
        self.workers_info: Callable[[], tuple] = lambda: ()
        self.current = None  # threading.local with .env, .logvars, .request_id (set by the worker)
        self.locks = None
        self.caches: dict = {}
        self.sharedareas: list = []  # tasks/sharedarea.py, by id

    # -- identity
    @property
    def has_master(self) -> bool:
        return self.role in ("master", "worker", "mule", "spooler") and bool(self.masterpid)

    def become(self, role: str, worker_id: int = 0, mule_id: int = 0) -> None:
        """Called in each process right after fork (the master's is set before the app loads)."""
        self.role = role
        self.worker_id = worker_id
        self.mule_id = mule_id
        if role != "master":
            self.ready = True
            # handlers registered in the master stay (inherited); its pending list is the master's job
            self.pending = []

    # -- signals
    def register(self, num: int, target: str, handler: Callable) -> None:
        if not self.has_master:
            raise ValueError("you cannot register signals without a master: set `master = true`")
        _check_signal(num)
        if not callable(handler):
            raise TypeError(f"register_signal({num}, ...): the handler must be callable, got {handler!r}")
        self.handlers[num] = (target or "", handler)
        who = "master" if self.role == "master" else f"{self.role} {self.worker_id or self.mule_id}"
        say(f"[uwsgi-signal] signum {num} registered (wid: {self.worker_id} modifier1: 0 target: "
            f"{target or 'default, any worker'}) in the {who}")
        if self.role == "master":
            self.targets[num] = target or ""
        else:
            self.tell_master({"op": "register", "num": num, "target": target or ""})

    def raise_signal(self, num: int, target: str | None = None) -> None:
        _check_signal(num)
        if not self.has_master:
            raise ValueError("uwsgi.signal() needs the master: set `master = true`")
        message = {"op": "signal", "num": num}
        if target:
            message["target"] = target
        if self.role == "master":
            self.pending.append(message)
        else:
            self.tell_master(message)

    def schedule(self, entry: dict) -> None:
        """A timer, rb-timer, cron or file monitor: the master's scheduler keeps one of each."""
        if not self.has_master:
            raise ValueError(f"uwsgi.add_{entry['op']}() needs the master: set `master = true`")
        _check_signal(entry["num"])
        if self.role == "master":
            self.pending.append(entry)
        else:
            self.tell_master(entry)

    def tell_master(self, message: dict) -> None:
        channel = self.channels.get("master") if self.channels else None
        if channel is None or not channel.send(b"J" + json.dumps(message).encode()):
            say(f"*** SIGNAL QUEUE IS FULL or gone: {message.get('op')} for signal {message.get('num')} from "
                f"{self.role} {self.worker_id or self.mule_id} was not delivered to the master ***")

    def handle(self, message: bytes, waiting: bool = False) -> bytes | None:
        """Run a signal delivered to this process (b's' + number); other messages are returned as they are.
        `waiting`: uwsgi.signal_wait() took it, so having no handler for it is fine."""
        if message[:1] != b"s" or len(message) < 2:
            return message
        num = message[1]
        self.signals_received.append(num)
        del self.signals_received[:-64]
        self.last_signal = num
        entry = self.handlers.get(num)
        if entry is None:
            if waiting:
                return None
            say(f"[uwsgi-signal] signal {num} reached {self.role} {self.worker_id or self.mule_id} (pid: "
                f"{os.getpid()}), which has no handler for it: register it before fork (non-lazy app) or in this "
                f"process")
            return None
        try:
            entry[1](num)
        except Exception:  # noqa: BLE001 - a handler's failure must not take the process down
            say(f"[uwsgi-signal] error in the handler of signal {num} ({self.role} {self.worker_id or self.mule_id}):"
                f"\n{traceback.format_exc().rstrip()}")
        return None


def _check_signal(num: Any) -> None:
    if not isinstance(num, int) or not 0 <= num < MAX_SIGNALS:
        raise ValueError(f"uWSGI signal numbers are 0..255, got {num!r}")


RT = Runtime()
