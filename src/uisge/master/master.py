"""The master process's loop: forks `processes` workers (and mules, spoolers), reaps them, and turns
signals, FIFO letters, worker messages and the clock into actions (reference §4; our differences are in
docs/deviations.md). Single-threaded with one selector; signal handlers only record. It never accepts or
serves a request.

It gathers facts and carries out actions; the decisions are master/policy.py's (respawns, crash loops,
recycling, mercy kills, harakiri, cheaper), a forked child's first steps master/birth.py's, uWSGI signal
routing master/routing.py's, reloads master/reload.py's (a graceful reload never refuses a request: old
workers leave only as their replacements accept), signals and FIFO letters master/commands.py's.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import time
from typing import Callable

from uisge import logfile
from uisge.master import cheaper as cheaper_algo
from uisge.master import birth, commands, daemon, harakiri, notify, policy, procname, reload, routing
from uisge.master.policy import Child
from uisge.master.reload import PREFLIGHT_ENV, REEXEC_ENV
from uisge.master.backlog import listen_queue
from uisge.master.listeners import vacuum
from uisge.master.fifo import MasterFifo
from uisge.master.scoreboard import Board
from uisge.master.stats import Snapshot, StatsServer, WorkerRow, proc_memory
from uisge.tasks import daemons as attached
from uisge.tasks import instance
from uisge.tasks.runtime import RT
from uisge.tasks.scheduler import Scheduler
from uisge.worker.loop import Listener

__all__ = ["Master", "PREFLIGHT_ENV", "REEXEC_ENV"]


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


say = logfile.say


class Master:
    def __init__(self, opts, listeners: list[Listener], apps, load_apps: Callable, argv: list[str], start_cwd: str,
                 adopted: list[dict] | None = None, generation: int = 1, ready_fd: int | None = None,
                 board_fd: int | None = None, carried: dict | None = None) -> None:
        self.opts = opts
        self.listeners = listeners
        self.apps = apps
        self.load_apps = load_apps
        self.argv = argv
        self.start_cwd = start_cwd
        self.ready_fd = ready_fd
        self.processes = max(1, opts.processes)
        self.lazy = bool(opts.lazy_apps or opts.lazy)
        self.generation = generation
        self.children: dict[int, Child] = {}
        self.sel = selectors.DefaultSelector()
        self.signals: list[int] = []
        self.stopping: str | None = None  # "graceful" or "brutal"
        self.announced = False  # READY told to systemd / the daemonize parent
        self.ever_ready = False
        self.memory = policy.Memory()  # what the policy remembers: respawns due, crash loops, recycling, ...
        self.preflight: subprocess.Popen | None = None
        self.preflight_brutal = False
        self.fifos: list[MasterFifo] = []
        self.log_path = logfile.log_path(opts)
        self.log_maxsize = logfile.maxsize(opts)
        self.next_second = 0.0
        self.exit_code = 0
        self.respawns: dict[int, int] = {}
        self.board = None
        from uisge import compat

        # uwsgi.workers() reads the board too; harakiri needs it to see a worker stuck without its GIL
        if opts.stats or opts.metrics or compat.imported or self.lazy or opts.harakiri or opts.cheaper:
            self.board = Board(2 * self.processes + 4, fd=board_fd, cores=opts.threads)
        self.stats: StatsServer | None = None
        # cheaper: the algorithm; the worker ids it retired are memory.cheap (no process, not respawned)
        self.cheaper: cheaper_algo.Cheaper | None = None
        self.cheaper_delta = 0  # master FIFO + and -
        self.paused = False  # SIGTSTP: workers do not accept (new workers start paused too)
        self.next_cheaper = 0.0
        if opts.cheaper:
            settings = cheaper_algo.Settings.from_options(opts)
            self.cheaper = cheaper_algo.Cheaper(settings)
            self.memory.cheap = set(range(settings.initial + 1, self.processes + 1))
        self.touched = {path: _mtime(path) for path in (*opts.touch_reload, *opts.touch_chain_reload,
                                                          *opts.touch_workers_reload, *opts.touch_mules_reload,
                                                          *opts.touch_spoolers_reload)}
        self.scheduler = Scheduler.from_options(opts, lambda num, target: routing.route(self, num, target), carried)
        self.group = None  # tasks-backend: this instance's membership in a group (tasks/group.py)
        if opts.tasks_backend:
            from uisge.tasks.group import Group

            self.group = self.scheduler.gate = Group(opts.tasks_backend)
        routing.absorb(self)
        self.daemons = attached.Daemons(attached.parse(opts), lambda: self.stop("graceful", "a control daemon died"))
        self.aux: dict[int, Child] = {}  # mules and spoolers, by pid
        self.mules = instance.mules(opts)
        self.spoolers = [(d, i) for d in RT.spooler_dirs if d not in RT.external_spoolers
                         for i in range(max(1, opts.spooler_processes or 1))]
        self.any_worker = 0
        now = time.monotonic()
        for info in adopted or ():
            ctl = socket.socket(fileno=info["ctl"])
            child = Child(info["wid"], info["pid"], ctl, info["generation"], now, ready=True,
                          slot=info.get("slot", -1) if board_fd is not None else -1)
            self._track(child)
        if adopted:
            self.ever_ready = True

    # ---------------------------------------------------------------- set-up
    def _install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

        def record(signum, frame):
            self.signals.append(signum)

        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGTSTP,
                    signal.SIGCHLD):
            signal.signal(sig, record)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(self.wake_r, selectors.EVENT_READ, lambda: commands.on_wake(self))

    def run(self) -> int:
        self._install_signals()
        procname.set_title(self.opts, "master")
        if self.opts.stats or self.opts.metrics:
            self.stats = StatsServer(self.opts, self.snapshot)
            self.stats.register(self.sel, say)
        for path in self.opts.master_fifo:
            fifo = MasterFifo(path)
            self.fifos.append(fifo)
            self.sel.register(fifo.fd, selectors.EVENT_READ, lambda f=fifo: commands.on_fifo(self, f))
        if self.generation == 1:
            say(f"spawned uisge master process (pid: {os.getpid()})")
        else:
            say(f"gracefully (RE)spawned uisge master process (pid: {os.getpid()}), generation {self.generation}")
        self.generation_started = time.monotonic()
        if RT.channels is not None:
            self.sel.register(RT.channels["master"].reader, selectors.EVENT_READ, lambda: routing.on_message(self))
        for index in range(len(self.spoolers)):
            self._spawn_aux("spooler", index)
        for wid in range(1, self.processes + 1):
            if wid not in self.memory.cheap:
                self.spawn(wid)
        for mule_id, _ in self.mules:
            self._spawn_aux("mule", mule_id)
        RT.ready = True
        if self.group is not None:
            self.group.start()
        while not (self.stopping and not self.children and not self.aux):
            memory = self.memory
            timeout = 0.2 if (self.stopping or memory.respawn_at or self.preflight or memory.aux_respawn_at) else 1.0
            if self.opts.harakiri:
                timeout = min(timeout, 0.25)
            if self.scheduler.timers:
                due = min(t.next_at for t in self.scheduler.timers.values()) - time.monotonic()
                timeout = max(0.005, min(timeout, due))
            for key, _ in self.sel.select(timeout):
                key.data()
            self._reap()
            self._tick(time.monotonic())
        return self._goodbye()

    # ---------------------------------------------------------------- mules, spoolers, signals
    def _spawn_aux(self, kind: str, number: int) -> None:
        """A mule (number = mule id) or a spooler (number = index in self.spoolers)."""
        forked = birth.fork_with_control(f"{kind} {number}")
        if forked is None:
            self.memory.aux_respawn_at[(kind, number)] = time.monotonic() + 1
            return
        pid, master_end, child_end = forked
        if pid == 0:
            master_end.close()
            birth.become_aux(self, kind, number, child_end)  # never returns
        child_end.close()
        child = Child(number, pid, master_end, self.generation, time.monotonic(), ready=True, kind=kind)
        self.aux[pid] = child
        master_end.setblocking(False)
        if kind == "spooler":
            directory, _ = self.spoolers[number]
            say(f"spawned the uisge spooler on dir {directory} with pid {pid}")
        else:
            say(f"spawned uisge mule {number} (pid: {pid})")

    # ---------------------------------------------------------------- workers
    def _free_slot(self) -> int:
        if self.board is None:
            return -1
        used = {c.slot for c in self.children.values()}
        return next(i for i in range(self.board.slots) if i not in used)

    def spawn(self, wid: int, successor_of: int | None = None) -> int | None:
        slot = self._free_slot()
        if slot >= 0:
            self.board.clear(slot)  # what a dead worker left there (a harakiri deadline) is not the new one's
        forked = birth.fork_with_control(f"worker {wid}")
        if forked is None:
            self.memory.respawn_at[wid] = time.monotonic() + 1
            return None
        pid, master_end, worker_end = forked
        if pid == 0:
            master_end.close()
            birth.become_worker(self, wid, worker_end, slot)  # never returns
        worker_end.close()
        self.respawns[wid] = self.respawns.get(wid, -1) + 1
        child = Child(wid, pid, master_end, self.generation, time.monotonic(), successor_of=successor_of, slot=slot)
        self._track(child)
        say(f"spawned uisge worker {wid} (pid: {pid}, cores: {self.opts.threads})")
        return pid

    def _track(self, child: Child) -> None:
        self.children[child.pid] = child
        child.ctl.setblocking(False)
        self.sel.register(child.ctl, selectors.EVENT_READ, lambda c=child: self._on_child(c))

    def _on_child(self, child: Child) -> None:
        try:
            data = child.ctl.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget_ctl(child)
            return
        if b"R" in data and not child.ready:
            policy.accepted(child, self.memory)
            if self.paused:
                birth.send(child.ctl, b"p")
            self.ever_ready = True
            if child.successor_of is not None:
                old = self.children.get(child.successor_of)
                if old is not None:
                    self._ask_to_leave(old, graceful=True)
            self._replace_old(child)
            self._maybe_announce()
        if b"C" in data:
            self.recycle(child)
        if b"H" in data:
            count = self.memory.harakiri_count[child.wid] = self.memory.harakiri_count.get(child.wid, 0) + 1
            say(f"HARAKIRI triggered by worker {child.wid} (pid: {child.pid}); it is being killed and respawned "
                f"(harakiri count of worker {child.wid}: {count})")
        if b"h" in data:  # an ASGI request's coroutine was cancelled: the worker lives on
            count = self.memory.harakiri_count[child.wid] = (self.memory.harakiri_count.get(child.wid, 0)
                                                             + data.count(b"h"))
            say(f"HARAKIRI of a request on worker {child.wid} (pid: {child.pid}): its coroutine was cancelled, the "
                f"worker goes on (harakiri count of worker {child.wid}: {count})")
        if b"A" in data:
            reload.reload(self, brutal=False)

    def recycle(self, child: Child) -> None:
        self._apply(policy.recycle(child, self.children, self.facts(), self.memory))

    def _forget_ctl(self, child: Child) -> None:
        try:
            self.sel.unregister(child.ctl)
        except (KeyError, ValueError):
            pass

    def current(self) -> list[Child]:
        return [c for c in self.children.values() if c.generation == self.generation and c.leaving_since is None]

    def _replace_old(self, new: Child) -> None:
        """A new-generation worker accepts: its predecessor (same id) may leave; once the whole new
        generation accepts, every old worker leaves."""
        if new.generation != self.generation:
            return
        current = self.current()
        all_ready = len(current) >= self.wanted() and all(c.ready for c in current)
        for old in list(self.children.values()):
            if old.generation < self.generation and old.leaving_since is None and (old.wid == new.wid or all_ready):
                self._ask_to_leave(old, graceful=not self.preflight_brutal)

    def wanted(self) -> int:
        """How many workers should run now: processes, less the ids cheaper has retired."""
        return self.processes - len(self.memory.cheap)

    def snapshot(self) -> Snapshot:
        """What the stats server shows: per worker id the newest process holding it, with its slot."""
        by_wid: dict[int, Child] = {}
        for child in sorted(self.children.values(), key=lambda c: (c.generation, c.spawned)):
            if child.leaving_since is None or child.wid not in by_wid:
                by_wid[child.wid] = child
        rows = []
        for wid in range(1, self.processes + 1):
            child = by_wid.get(wid)
            slot = self.board.read(child.slot) if child is not None and self.board is not None else None
            rows.append(WorkerRow(wid, child.pid if child else 0, bool(child and child.ready), slot,
                                  self.memory.harakiri_count.get(wid, 0), self.respawns.get(wid, 0),
                                  wid in self.memory.cheap))
        return Snapshot(rows, list(self.listeners), self.paused, self.ready(),
                        self.group.state() if self.group is not None else None)

    def ready(self) -> bool:
        """/readyz: the app is loaded, at least one worker accepts, and we are not draining."""
        return not self.stopping and any(c.ready for c in self.current())

    def _maybe_announce(self) -> None:
        current = self.current()
        if len(current) < self.wanted() or not all(c.ready for c in current):
            return
        if not self.announced:
            self.announced = True
            notify.notify("READY=1", f"STATUS=serving with {self.wanted()} workers", f"MAINPID={os.getpid()}")
            daemon.say_ready(self.ready_fd)
            self.ready_fd = None
            if self.generation > 1:
                took = time.monotonic() - self.generation_started
                say(f"reload complete: {self.wanted()} new workers accepting ({took:.1f} s); old workers are "
                    f"finishing their requests")

    def _ask_to_leave(self, child: Child, graceful: bool) -> None:
        self._apply(policy.leave(child, graceful, self.facts()))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.preflight is not None and pid == self.preflight.pid:
                # reaped here, so Popen cannot wait for it: hand it the status (its poll() then returns it)
                self.preflight.returncode = os.waitstatus_to_exitcode(status)
                continue
            child = self.children.pop(pid, None)
            if child is None:
                aux = self.aux.pop(pid, None)
                if aux is not None:
                    self._buried(aux, status)
                elif not self.scheduler.reaped(pid, status):
                    self.daemons.reaped(pid, status, time.monotonic())
                continue
            self._forget_ctl(child)
            self._buried(child, status)

    def _buried(self, child: Child, status: int) -> None:
        """A worker, mule or spooler was reaped: the policy says what follows."""
        if child.ctl is not None:
            child.ctl.close()
        code = os.waitstatus_to_exitcode(status)
        if RT.command and child.kind == "worker" and not self.stopping:  # the `pyrun` script ended: so does all
            self.exit_code = code if code >= 0 else 1
            say(f"the pyrun script {RT.command} ended (exit code {code})")
            self.stop("brutal", "end of the pyrun script")
            return
        self._apply(policy.buried(child, code, self.children, self.facts(), self.memory))

    def aux_leave(self, graceful: bool) -> None:
        for child in self.aux.values():
            if child.leaving_since is None or not graceful:
                child.leaving_since = time.monotonic()
                child.kill_at = child.leaving_since + (self.opts.mule_reload_mercy if graceful else 3)
                try:
                    os.kill(child.pid, signal.SIGTERM if graceful else signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.memory.aux_respawn_at.clear()

    # ---------------------------------------------------------------- periodic
    def _tick(self, now: float) -> None:
        """Once per loop round: gather the facts, let the policy decide, carry out its actions."""
        if self.group is not None:
            for message in self.group.drain():
                say(message)
        if not self.stopping:
            routing.absorb(self)
            self.scheduler.tick(now, time.time())
        stuck, cheaper_decision, serving = [], None, {}
        if self.opts.harakiri and self.board is not None:
            stuck = self._stuck()
        if self.cheaper is not None and now >= self.next_cheaper and not self.stopping and self.announced:
            self.next_cheaper = now + 1.0  # uWSGI's master cycle
            serving = self._serving()
            delta, self.cheaper_delta = self.cheaper_delta, 0
            cheaper_decision = self.cheaper.decide(self._cheaper_views(now, serving), self._backlog(), now, delta)
        self._apply(policy.decide(self.children, self.aux, self.facts(now), self.memory, stuck, cheaper_decision,
                                  serving, self.cheaper.s.minimum if self.cheaper else 0))
        if self.preflight is not None and self.preflight.poll() is not None:
            reload.preflight_done(self)
        if now >= self.next_second:
            self.next_second = now + 1.0
            if not self.stopping:
                self.daemons.tick(now)
            self._check_touched()
            if self.opts.evil_reload_on_rss or self.opts.evil_reload_on_as:
                self._evil_checks()
            if self.log_path and self.log_maxsize and logfile.rotate_if_big(self.log_path, self.log_maxsize):
                self.broadcast(b"l")

    def facts(self, now: float | None = None) -> policy.Facts:
        opts = self.opts
        return policy.Facts(now=time.monotonic() if now is None else now, generation=self.generation,
                            processes=self.processes, stopping=bool(self.stopping), ever_ready=self.ever_ready,
                            forkbomb_delay=float(opts.forkbomb_delay), worker_mercy=float(opts.worker_reload_mercy),
                            mule_mercy=float(opts.mule_reload_mercy), harakiri=float(opts.harakiri or 0))

    def _apply(self, actions: list) -> None:
        """Carry out the policy's actions, in order."""
        for action in actions:
            kind = type(action)
            if kind is policy.Say:
                say(action.text)
            elif kind is policy.Signal:
                try:
                    os.kill(action.pid, action.signum)
                except ProcessLookupError:
                    pass
            elif kind is policy.Spawn:
                pid = self.spawn(action.wid, successor_of=action.successor_of)
                if action.respawn and pid:
                    say(f"Respawned uisge worker {action.wid} (new pid: {pid})")
            elif kind is policy.SpawnAux:
                self._spawn_aux(action.kind, action.number)
            elif kind is policy.Stop:
                self.stop(action.mode, action.why)
                if action.exit_code:
                    self.exit_code = action.exit_code

    # ---------------------------------------------------------------- facts for harakiri and cheaper
    def _stuck(self) -> list[harakiri.Stuck]:
        """Workers whose app code is past harakiri on the scoreboard (master/harakiri.py)."""
        wall = time.time()
        records = [(c.pid, c.wid, self.board.stuck(c.slot, wall)) for c in self.children.values()
                   if c.slot >= 0 and c.leaving_since is None and c.harakiri_kill_at is None]
        return harakiri.stuck_workers(records, wall, float(self.opts.harakiri),
                                      harakiri.grace(self.opts.harakiri_graceful_timeout or 0))

    def _serving(self) -> dict[int, Child]:
        """The serving (current generation, not leaving) worker of each id."""
        return {c.wid: c for c in self.children.values()
                if c.leaving_since is None and c.generation == self.generation}

    def _cheaper_views(self, now: float, serving: dict[int, Child]) -> list[cheaper_algo.WorkerView]:
        views = []
        for wid in range(1, self.processes + 1):
            child = serving.get(wid)
            if wid in self.memory.cheap:
                views.append(cheaper_algo.WorkerView(wid, running=False))
            elif child is None:  # between a death and its respawn: still one of the workers
                views.append(cheaper_algo.WorkerView(wid, True, spawned=now))
            else:
                slot = self.board.read(child.slot) if child.slot >= 0 else None
                rss = proc_memory(child.pid)[0] if self.cheaper.s.rss_soft else 0
                views.append(cheaper_algo.WorkerView(wid, True, busy=bool(slot and slot["in_request"]),
                                                     running_time=slot["running_time"] if slot else 0.0,
                                                     spawned=child.spawned, rss=rss))
        return views

    def _backlog(self) -> int:
        return max((listen_queue(listener.sock)[0] for listener in self.listeners), default=0)

    def _check_touched(self) -> None:
        for path, before in self.touched.items():
            now = _mtime(path)
            if now == before:
                continue
            self.touched[path] = now
            if path in self.opts.touch_reload:
                say(f"*** {path} has been touched... grace them all !!! ***")
                reload.reload(self, brutal=False)
            elif path in self.opts.touch_chain_reload:
                say(f"*** {path} has been touched... chain reload !!! ***")
                reload.chain_reload(self)
            elif path in self.opts.touch_mules_reload or path in self.opts.touch_spoolers_reload:
                kind = "mule" if path in self.opts.touch_mules_reload else "spooler"
                say(f"*** {path} has been touched... {kind}s reload !!! ***")
                self._apply(policy.reload_aux(self.aux, kind, self.facts(), self.memory))
            else:
                say(f"*** {path} has been touched... workers reload !!! ***")
                reload.reload_workers(self, brutal=False)

    def _evil_checks(self) -> None:
        """evil-reload-on-rss/-as: each serving worker's memory from /proc, judged by the policy."""
        usage = {c.pid: proc_memory(c.pid) for c in self.children.values() if c.leaving_since is None}
        self._apply(policy.evil(self.children, usage, self.opts.evil_reload_on_rss or 0,
                                self.opts.evil_reload_on_as or 0))

    def broadcast(self, message: bytes) -> None:
        for child in self.children.values():
            try:
                child.ctl.send(message)
            except OSError:
                pass

    # ---------------------------------------------------------------- signals and commands
    def stop(self, mode: str, why: str) -> None:
        if self.stopping == "brutal" or self.stopping == mode:
            return
        self.stopping = mode
        notify.notify("STOPPING=1", f"STATUS=stopping ({why})")
        if mode == "graceful":
            say(f"{why} received: gracefully stopping workers (they finish what they have, including the "
                f"listen backlog, within worker-reload-mercy = {self.opts.worker_reload_mercy} s)...")
        else:
            say(f"{why} received: killing workers...")
        self.memory.respawn_at.clear()
        if self.preflight is not None:
            self.preflight.kill()
        for child in list(self.children.values()):
            if mode == "brutal" and child.leaving_since is not None:
                child.leaving_since = None  # ask again, harder
            self._ask_to_leave(child, graceful=mode == "graceful")
        self.aux_leave(graceful=mode == "graceful")
        self.scheduler.stop()
        self.daemons.stop(float(self.opts.reload_mercy), reload=False)

    # ---------------------------------------------------------------- exit
    def _goodbye(self) -> int:
        if self.group is not None:
            self.group.stop()
            for message in self.group.drain():
                say(message)
        if self.stats is not None:
            self.stats.close()
        for fifo in self.fifos:
            fifo.close(remove=True)
        vacuum(self.opts, self.listeners)
        say("goodbye to uisge.")
        return self.exit_code
