"""The master process: forks `processes` workers, reaps and respawns them, and turns signals and
master-fifo letters into stops and reloads (reference §4; our differences are in docs/deviations.md).

A graceful reload never refuses a request: unless the app is loaded lazily, the master first checks
that the new code and config load (in a separate process), then re-execs itself with the listening
sockets and the running workers inherited; the new master loads the new code and forks new workers,
and each old worker is asked to leave only when its replacement accepts. With `lazy-apps` the same
overlap happens without the re-exec. Single-threaded with one selector; signal handlers only record.
It never accepts or serves a request.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import traceback
from typing import Callable

from uisge import logfile
from uisge.errors import UisgeError
from uisge.master import cheaper as cheaper_algo
from uisge.master import daemon, harakiri, notify, pidfile, policy, procname
from uisge.master.policy import EXIT_APP, Child
from uisge.master.backlog import listen_queue
from uisge.master.fifo import COMMANDS, MasterFifo
from uisge.master.scoreboard import Board
from uisge.master.stats import Snapshot, StatsServer, WorkerRow, proc_memory
from uisge.tasks import daemons as attached
from uisge.tasks import instance
from uisge.tasks.runtime import RT
from uisge.tasks.scheduler import Scheduler
from uisge.worker.loop import Listener, Worker
from uisge.worker.runner import drain_pipe

REEXEC_ENV = "UISGE_REEXEC"
PREFLIGHT_ENV = "UISGE_PREFLIGHT"
FORWARDED = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1}


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
                                                          *opts.touch_workers_reload)}
        self.scheduler = Scheduler.from_options(opts, self._route, carried)
        self._absorb()
        self.daemons = attached.Daemons(attached.parse(opts), lambda: self._stop("graceful", "a control daemon died"))
        self.aux: dict[int, Child] = {}  # mules and spoolers, by pid
        self.mules = instance.mules(opts)
        self.spoolers = [(d, i) for d in RT.spooler_dirs for i in range(max(1, opts.spooler_processes or 1))]
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
        self.sel.register(self.wake_r, selectors.EVENT_READ, self._on_wake)

    def run(self) -> int:
        self._install_signals()
        procname.set_title(self.opts, "master")
        if self.opts.stats or self.opts.metrics:
            self.stats = StatsServer(self.opts, self.snapshot)
            self.stats.register(self.sel, say)
        for path in self.opts.master_fifo:
            fifo = MasterFifo(path)
            self.fifos.append(fifo)
            self.sel.register(fifo.fd, selectors.EVENT_READ, lambda f=fifo: self._on_fifo(f))
        if self.generation == 1:
            say(f"spawned uisge master process (pid: {os.getpid()})")
        else:
            say(f"gracefully (RE)spawned uisge master process (pid: {os.getpid()}), generation {self.generation}")
        self.generation_started = time.monotonic()
        if RT.channels is not None:
            self.sel.register(RT.channels["master"].reader, selectors.EVENT_READ, self._on_message)
        for index in range(len(self.spoolers)):
            self._spawn_aux("spooler", index)
        for wid in range(1, self.processes + 1):
            if wid not in self.memory.cheap:
                self._spawn(wid)
        for mule_id, _ in self.mules:
            self._spawn_aux("mule", mule_id)
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
        forked = _fork_with_control(f"{kind} {number}")
        if forked is None:
            self.memory.aux_respawn_at[(kind, number)] = time.monotonic() + 1
            return
        pid, master_end, child_end = forked
        if pid == 0:
            master_end.close()
            self._become_aux(kind, number, child_end)  # never returns
        child_end.close()
        child = Child(number, pid, master_end, self.generation, time.monotonic(), ready=True, kind=kind)
        self.aux[pid] = child
        master_end.setblocking(False)
        if kind == "spooler":
            directory, _ = self.spoolers[number]
            say(f"spawned the uisge spooler on dir {directory} with pid {pid}")
        else:
            say(f"spawned uisge mule {number} (pid: {pid})")

    def _close_inherited(self) -> None:
        """In a freshly forked child: drop what only the master may hold."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
                    signal.SIGTSTP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        self.sel.close()
        for child in (*self.children.values(), *self.aux.values()):
            child.ctl.close()
        for fifo in self.fifos:
            fifo.close(remove=False)
        os.close(self.wake_r)
        os.close(self.wake_w)
        if self.stats is not None:
            for sock, _, _ in self.stats.socks:
                sock.close()

    def _become_aux(self, kind: str, number: int, ctl: socket.socket) -> None:
        code = 1
        try:
            self._close_inherited()
            for listener in self.listeners:
                listener.sock.close()
            from uisge.compat import uwsgi as uwsgi_module

            if kind == "mule":
                from uisge.tasks.mule import CURRENT, Mule

                RT.become("mule", mule_id=number)
                procname.set_title(self.opts, f"mule {number}")
                if self.apps is None:  # lazy-apps: the mule loads the app too, for its decorators
                    self.load_apps()
                _post_fork(uwsgi_module)
                mule = Mule(number, dict(self.mules)[number], ctl)
                CURRENT.append(mule)
                code = mule.run()
            else:
                from uisge.tasks.spooler import Spooler

                directory, _ = self.spoolers[number]
                RT.become("spooler")
                procname.set_title(self.opts, "spooler")
                if self.apps is None:
                    self.load_apps()
                _post_fork(uwsgi_module)
                code = Spooler(self.opts, directory, RT.channels[f"spooler:{directory}"], ctl, RT.handle,
                               lambda: uwsgi_module.spooler).run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - never return into the master's loop
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)

    def _absorb(self) -> None:
        """Signals raised and timers registered inside the master itself (e.g. at app import)."""
        pending, RT.pending = RT.pending, []
        for entry in pending:
            self._registration(entry)

    def _on_message(self) -> None:
        channel = RT.channels["master"]
        for _ in range(256):
            message = channel.receive()
            if message is None:
                return
            if message[:1] != b"J":
                continue
            try:
                self._registration(json.loads(message[1:]))
            except (ValueError, KeyError, TypeError) as exc:
                say(f"[uwsgi-signal] bad request to the master ignored: {exc}")

    def _registration(self, entry: dict) -> None:
        op = entry["op"]
        if op == "register":
            RT.targets[int(entry["num"])] = str(entry.get("target", ""))
        elif op == "signal":
            self._route(int(entry["num"]), entry.get("target"))
        else:
            self.scheduler.add(entry)

    def _route(self, num: int, target: str | None) -> None:
        """Deliver uWSGI signal `num` to its target (reference §7.2)."""
        if target is None:
            if num not in RT.targets:
                say(f"[uwsgi-signal] signal {num} is not registered by any process: nothing to run (register it "
                    f"with uwsgi.register_signal() or a uwsgidecorators decorator)")
                return
            target = RT.targets[num]
        message = b"s" + bytes([num])
        channels = RT.channels
        ok = True
        if target in ("", "worker", "worker0"):
            ok = channels["workers"].send(message)
        elif target in ("workers", "active-workers"):
            for child in self._current():
                _send(child.ctl, b"S" + bytes([num]))
        elif target.startswith("worker") and target[6:].isdigit():
            wid = int(target[6:])
            for child in self._current():
                if child.wid == wid:
                    _send(child.ctl, b"S" + bytes([num]))
        elif target in ("mule", "mule0"):
            ok = channels["mule0"].send(message)
        elif target == "mules":
            for mule_id, _ in self.mules:
                ok = channels[f"mule{mule_id}"].send(message) and ok
        elif target.startswith("mule") and target[4:].isdigit() and f"mule{target[4:]}" in channels:
            ok = channels[f"mule{target[4:]}"].send(message)
        elif target == "spooler":
            for directory in RT.spooler_dirs:
                ok = channels[f"spooler:{directory}"].send(message) and ok
        elif target.startswith("farm_") and f"farm:{target[5:]}" in channels:
            ok = channels[f"farm:{target[5:]}"].send(message)
        elif target == "subscribed":
            return
        else:
            say(f"[uwsgi-signal] signal {num}: unknown target {target!r} (targets: worker, workers, workerN, mule, "
                f"mules, muleN, spooler, farm_NAME)")
            return
        if not ok:
            say(f"*** SIGNAL QUEUE IS FULL: signal {num} for {target or 'any worker'} dropped ***")

    # ---------------------------------------------------------------- workers
    def _free_slot(self) -> int:
        if self.board is None:
            return -1
        used = {c.slot for c in self.children.values()}
        return next(i for i in range(self.board.slots) if i not in used)

    def _spawn(self, wid: int, successor_of: int | None = None) -> int | None:
        slot = self._free_slot()
        if slot >= 0:
            self.board.clear(slot)  # what a dead worker left there (a harakiri deadline) is not the new one's
        forked = _fork_with_control(f"worker {wid}")
        if forked is None:
            self.memory.respawn_at[wid] = time.monotonic() + 1
            return None
        pid, master_end, worker_end = forked
        if pid == 0:
            master_end.close()
            self._become_worker(wid, worker_end, slot)  # never returns
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

    def _become_worker(self, wid: int, ctl: socket.socket, slot: int) -> None:
        code = 1
        try:
            self._close_inherited()
            RT.become("worker", worker_id=wid)
            procname.set_title(self.opts, f"worker {wid}")
            apps = self.apps
            if apps is None:
                apps = self.load_apps()
                if apps is None:
                    os._exit(EXIT_APP)
            from uisge.compat import uwsgi as uwsgi_module

            _post_fork(uwsgi_module)
            if self.board is not None:
                board_reader = self.board
                mounts = tuple(mountpoint for mountpoint, _app in apps)
                RT.workers_info = lambda: _workers_info(board_reader, mounts)
                RT.total_requests = lambda: sum(w["requests"] for w in _workers_info(board_reader, mounts))
            reopen = (lambda: logfile.reopen(self.log_path)) if self.log_path else None
            board = self.board.writer(slot, wid) if self.board is not None else None
            code = Worker(self.opts, self.listeners, apps, wid, control=ctl, reopen_log=reopen, board=board).run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - a worker must never return into the master's loop
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)

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
                _send(child.ctl, b"p")
            self.ever_ready = True
            if child.successor_of is not None:
                old = self.children.get(child.successor_of)
                if old is not None:
                    self._ask_to_leave(old, graceful=True)
            self._replace_old(child)
            self._maybe_announce()
        if b"C" in data:
            self._recycle(child)
        if b"H" in data:
            count = self.memory.harakiri_count[child.wid] = self.memory.harakiri_count.get(child.wid, 0) + 1
            say(f"HARAKIRI triggered by worker {child.wid} (pid: {child.pid}); it is being killed and respawned "
                f"(harakiri count of worker {child.wid}: {count})")
        if b"A" in data:
            self._reload(brutal=False)

    def _recycle(self, child: Child) -> None:
        self._apply(policy.recycle(child, self.children, self.facts(), self.memory))

    def _forget_ctl(self, child: Child) -> None:
        try:
            self.sel.unregister(child.ctl)
        except (KeyError, ValueError):
            pass

    def _current(self) -> list[Child]:
        return [c for c in self.children.values() if c.generation == self.generation and c.leaving_since is None]

    def _replace_old(self, new: Child) -> None:
        """A new-generation worker accepts: its predecessor (same id) may leave; once the whole new
        generation accepts, every old worker leaves."""
        if new.generation != self.generation:
            return
        current = self._current()
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
        return Snapshot(rows, list(self.listeners), self.paused, self.ready())

    def ready(self) -> bool:
        """/readyz: the app is loaded, at least one worker accepts, and we are not draining."""
        return not self.stopping and any(c.ready for c in self._current())

    def _maybe_announce(self) -> None:
        current = self._current()
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
        self._apply(policy.buried(child, os.waitstatus_to_exitcode(status), self.children, self.facts(),
                                  self.memory))

    def _aux_leave(self, graceful: bool) -> None:
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
        if not self.stopping:
            self._absorb()
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
            self._preflight_done()
        if now >= self.next_second:
            self.next_second = now + 1.0
            if not self.stopping:
                self.daemons.tick(now)
            self._check_touched()
            if self.opts.evil_reload_on_rss or self.opts.evil_reload_on_as:
                self._evil_checks()
            if self.log_path and self.opts.log_maxsize and logfile.rotate_if_big(self.log_path, self.opts.log_maxsize):
                self._broadcast(b"l")

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
                pid = self._spawn(action.wid, successor_of=action.successor_of)
                if action.respawn and pid:
                    say(f"Respawned uisge worker {action.wid} (new pid: {pid})")
            elif kind is policy.SpawnAux:
                self._spawn_aux(action.kind, action.number)
            elif kind is policy.Stop:
                self._stop(action.mode, action.why)
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
                self._reload(brutal=False)
            elif path in self.opts.touch_chain_reload:
                say(f"*** {path} has been touched... chain reload !!! ***")
                self._chain_reload()
            else:
                say(f"*** {path} has been touched... workers reload !!! ***")
                self._reload_workers(brutal=False)

    def _chain_reload(self) -> None:
        """Every worker replaced one at a time (reference §4.7): the recycle queue does exactly that."""
        for child in sorted(self._current(), key=lambda c: c.wid):
            self._recycle(child)

    def _evil_checks(self) -> None:
        from uisge.worker.health import PAGE

        for child in list(self.children.values()):
            if child.leaving_since is not None:
                continue
            try:
                with open(f"/proc/{child.pid}/statm") as fh:
                    size, resident = (int(v) * PAGE for v in fh.read().split()[:2])
            except (OSError, ValueError):
                continue
            limit_rss, limit_as = self.opts.evil_reload_on_rss, self.opts.evil_reload_on_as
            if (limit_rss and resident >= limit_rss) or (limit_as and size >= limit_as):
                what = f"RSS: {resident}" if limit_rss and resident >= limit_rss else f"AS: {size}"
                say(f"*** EVIL RELOAD ON WORKER {child.wid} {what} (pid: {child.pid}) ***")
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _broadcast(self, message: bytes) -> None:
        for child in self.children.values():
            try:
                child.ctl.send(message)
            except OSError:
                pass

    # ---------------------------------------------------------------- signals and commands
    def _on_wake(self) -> None:
        drain_pipe(self.wake_r)
        signals, self.signals = self.signals, []
        for signum in signals:
            if signum == signal.SIGHUP:
                self._reload(brutal=False)
            elif signum == signal.SIGTERM:
                if self.opts.sigterm_reload:
                    self._reload(brutal=True)
                else:
                    self._stop("graceful", "SIGTERM")
            elif signum in (signal.SIGINT, signal.SIGQUIT):
                self._stop("brutal", signal.Signals(signum).name)
            elif signum == signal.SIGUSR1:
                self._stats()
            elif signum == signal.SIGTSTP:
                self._pause()

    def _on_fifo(self, fifo: MasterFifo) -> None:
        for letter in fifo.read():
            if letter not in COMMANDS:
                say(f"master-fifo {fifo.path}: unknown command {letter!r}; known: {''.join(sorted(COMMANDS))}")
                continue
            say(f"master-fifo {fifo.path}: {letter} ({COMMANDS[letter]})")
            if letter in "rR":
                self._reload(brutal=letter == "R")
            elif letter in "qQ":
                self._stop("graceful" if letter == "q" else "brutal", f"master-fifo {letter}")
            elif letter == "c":
                self._chain_reload()
            elif letter in "wW":
                self._reload_workers(brutal=letter == "W")
            elif letter == "s":
                self._stats()
            elif letter in "lL":
                if self.log_path:
                    if letter == "L":
                        logfile.rotate_if_big(self.log_path, 0)
                    else:
                        logfile.reopen(self.log_path)
                    self._broadcast(b"l")
            elif letter == "p":
                self._pause()
            elif letter in "+-":
                if self.cheaper is None:
                    say(f"master-fifo {fifo.path}: {letter} changes the number of workers only with `cheaper`")
                else:
                    self.cheaper_delta += 1 if letter == "+" else -1
            elif letter == "P":
                for path in (self.opts.pidfile, self.opts.pidfile2):
                    if path:
                        try:
                            pidfile.write(path, os.getpid())
                        except UisgeError as exc:  # e.g. /run is root's and we dropped privileges
                            say(f"master-fifo P: {exc}")

    def _pause(self) -> None:
        """SIGTSTP, `uisge --pause`, master FIFO `p`: the workers stop or go back to accepting connections
        (new ones wait in the listen backlog meanwhile; requests begun are finished)."""
        self.paused = not self.paused
        if self.paused:
            say("*** PAUSE (press start to resume, if you do not have a joypad send SIGTSTP) ***")
        else:
            say("*** (SIGTSTP received) resuming workers ***")
        self._broadcast(b"p" if self.paused else b"u")

    def _stats(self) -> None:
        say(f"uisge master (pid: {os.getpid()}), generation {self.generation}, {len(self.children)} workers:")
        for child in sorted(self.children.values(), key=lambda c: (c.generation, c.wid)):
            state = "leaving" if child.leaving_since is not None else ("accepting" if child.ready else "starting")
            say(f"worker {child.wid} (pid: {child.pid}) generation {child.generation}: {state}, up "
                f"{time.monotonic() - child.spawned:.0f} s")

    def _stop(self, mode: str, why: str) -> None:
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
        self._aux_leave(graceful=mode == "graceful")
        self.scheduler.stop()
        self.daemons.stop(float(self.opts.reload_mercy), reload=False)

    def _reload_workers(self, brutal: bool) -> None:
        """A new generation of workers forked from this master (no re-exec); old ones leave as new ones
        accept. Picks up new code only with lazy-apps."""
        if self.stopping:
            return
        say("...gracefully reloading workers..." if not brutal else "...brutally reloading workers...")
        self.preflight_brutal = brutal
        self.generation += 1
        self.generation_started = time.monotonic()
        self.announced = False
        for wid in range(1, self.processes + 1):
            self._spawn(wid)

    def _reload(self, brutal: bool) -> None:
        if self.stopping or self.preflight is not None:
            return
        notify.notify("RELOADING=1", "STATUS=reloading")
        if self.lazy:
            self._reload_workers(brutal)
            return
        say("...gracefully reloading: checking that the new code and config load; the workers keep serving...")
        env = dict(os.environ, **{PREFLIGHT_ENV: "1"})
        env.pop(REEXEC_ENV, None)
        self.preflight_brutal = brutal
        self.preflight = subprocess.Popen([sys.executable, "-m", "uisge", *self.argv], cwd=self.start_cwd, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def _preflight_done(self) -> None:
        proc, self.preflight = self.preflight, None
        output = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
        if proc.returncode != 0:
            say(f"reload aborted: the new code or config does not load (exit code {proc.returncode}):\n"
                f"{output.rstrip()}\nthe running workers keep serving the previous version; fix it and reload "
                f"again")
            notify.notify("READY=1", "STATUS=reload failed; serving the previous version")
            return
        self._reexec()

    def _reexec(self) -> None:
        say("binary reloading uisge: the listening sockets and running workers stay; new workers get the new code")
        state = {
            "generation": self.generation,
            "listeners": [[l.option, l.address, l.sock.fileno(), l.name] for l in self.listeners],
            "workers": [{"wid": c.wid, "pid": c.pid, "ctl": c.ctl.fileno(), "generation": c.generation,
                         "slot": c.slot} for c in self.children.values() if c.leaving_since is None],
            "board": self.board.fd if self.board is not None else None,
            "brutal": self.preflight_brutal,
            "tasks": instance.state(),
            "scheduler": self.scheduler.state(),
        }
        self._aux_leave(graceful=True)
        self.scheduler.stop()
        self.daemons.stop(float(self.opts.reload_mercy), reload=True)
        for listener in self.listeners:
            listener.sock.set_inheritable(True)
        if self.board is not None:
            os.set_inheritable(self.board.fd, True)
        if self.stats is not None:
            self.stats.close()
        for child in self.children.values():
            child.ctl.set_inheritable(True)
            child.ctl.setblocking(True)
        for fifo in self.fifos:
            fifo.close(remove=False)
        env = dict(os.environ, **{REEXEC_ENV: json.dumps(state)})
        sys.stderr.flush()
        sys.stdout.flush()
        try:
            os.chdir(self.start_cwd)
            os.execve(sys.executable, [sys.executable, "-m", "uisge", *self.argv], env)
        except OSError as exc:
            say(f"re-exec failed: {exc}; the running workers keep serving")
            for path in self.opts.master_fifo:
                fifo = MasterFifo(path)
                self.fifos.append(fifo)
                self.sel.register(fifo.fd, selectors.EVENT_READ, lambda f=fifo: self._on_fifo(f))

    # ---------------------------------------------------------------- exit
    def _goodbye(self) -> int:
        if self.stats is not None:
            self.stats.close()
        for fifo in self.fifos:
            fifo.close(remove=True)
        vacuum(self.opts, self.listeners)
        say("goodbye to uisge.")
        return self.exit_code


def _fork_with_control(what: str) -> tuple[int, socket.socket, socket.socket] | None:
    """fork() with a control socketpair (the master's end, the child's end); None if fork failed."""
    master_end, child_end = socket.socketpair()
    # a stop signal landing between fork() and the child's own handlers would reach the master's
    # recording handler in the child and be lost: block them across fork(); the child unblocks them in
    # _close_inherited() once they are back to their defaults
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        pid = os.fork()
    except OSError as exc:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        say(f"fork() of {what} failed: {exc}; trying again in 1 s")
        master_end.close()
        child_end.close()
        return None
    if pid:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    return pid, master_end, child_end


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.send(data)
    except OSError:
        pass


def _post_fork(uwsgi_module) -> None:
    """uwsgi.post_fork_hook (uwsgidecorators' @postfork chain), in every process the master forks."""
    hook = getattr(uwsgi_module, "post_fork_hook", None)
    if hook is not None:
        hook()


def _workers_info(board: Board, mounts: tuple = ("",)) -> tuple:
    """uwsgi.workers(): the stats fields of every worker, read off the scoreboard, with its memory from
    /proc and its apps (uWSGI's shape; per-app counters are the worker's, uisge counts per worker)."""
    from uisge.worker.health import PAGE

    out = []
    for slot in range(board.slots):
        s = board.read(slot)
        if not s["pid"] or not s["wid"]:
            continue
        try:
            with open(f"/proc/{s['pid']}/statm") as fh:
                vsz, rss = (int(v) * PAGE for v in fh.read().split()[:2])
        except (OSError, ValueError):
            vsz = rss = 0
        apps = tuple({"id": i, "modifier1": 0, "mountpoint": mountpoint, "startup_time": 0,
                      "requests": s["requests"] if len(mounts) == 1 else 0, "exceptions": 0, "chdir": ""}
                     for i, mountpoint in enumerate(mounts))
        out.append({"id": s["wid"], "pid": s["pid"], "requests": s["requests"], "delta_requests": s["requests"],
                    "signals": 0, "exceptions": s["exceptions"], "status": b"busy" if s["in_request"] else b"idle",
                    "rss": rss, "vsz": vsz, "running_time": int(s["running_time"] * 1_000_000),
                    "last_spawn": int(s["spawned"]), "respawn_count": 0, "tx": s["tx"],
                    "avg_rt": int(s["avg_rt"] * 1_000_000), "apps": apps})
    return tuple(sorted(out, key=lambda w: w["id"]))


def vacuum(opts, listeners: list[Listener]) -> None:
    """`vacuum`: remove our pidfiles and unix socket files on the way out."""
    if not opts.vacuum:
        return
    for path in (opts.pidfile, opts.pidfile2):
        if path:
            pidfile.remove(path, os.getpid())
    for listener in listeners:
        if listener.path:
            try:
                os.unlink(listener.path)
            except OSError:
                pass
    say("vacuum: removed the pidfile and unix sockets")
