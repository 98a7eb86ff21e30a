"""The event loop of one worker process: epoll over the listeners, the client connections (readable
and writable), the master's control socket, uWSGI signals and the app threads' wake-up pipe; a
one-second tick for timeouts and health; the stop. What happens to a connection is connection.py's
business; where app code runs is runner.py's.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from typing import Callable

from uisge import compat
from uisge.limits import pin_worker
from uisge.logfile import say
from uisge.tasks.runtime import RT
from uisge.worker.connection import Conn, Listener, Pipeline  # noqa: F401 - Listener is part of this API
from uisge.worker.health import Health, wanted as health_wanted
from uisge.worker.reqlog import RequestLog, ctime_now
from uisge.worker.runner import drain_pipe
from uisge.worker.static import StaticFiles
from uisge.wsgi.adapter import http_date

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT


class Worker:
    def __init__(self, opts, listeners: list[Listener], apps: list[tuple[str, Callable]], worker_id: int = 1,
                 control: socket.socket | None = None, reopen_log: Callable[[], None] | None = None,
                 board=None) -> None:
        self.opts = opts
        if opts.cpu_affinity:
            say(pin_worker(opts.cpu_affinity, worker_id))
        if opts.py_tracebacker:
            from uisge.worker.tracebacker import serve

            serve(opts.py_tracebacker, worker_id, say)
        self.control = control  # our end of the master's socketpair: we say "ready", it says "reopen logs"
        self.reopen_log = reopen_log
        self.board = board  # our scoreboard slot (scoreboard.SlotWriter) when stats are served
        self.stopping = False
        self.accepting = True  # False while the master has the workers paused (SIGTSTP)
        self.listeners = {l.fd: l for l in listeners}
        self.worker_id = worker_id
        self.log = RequestLog(opts)
        self.running = True
        self.graceful = True
        self.ep = select.epoll()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.now = time.monotonic()  # read once per loop round
        self.health = Health(opts, worker_id, self._tell_master, board) if health_wanted(opts) else None
        static = StaticFiles(opts, self.log.error) or None  # None when no static option is set
        current = None
        if "uwsgi" in compat.imported:  # only apps that use the uwsgi module pay for the request context
            import threading

            current = RT.current = threading.local()
        self.pipeline = Pipeline(self, opts, apps, self.log, self.health, board, static, current)

    @property
    def requests(self) -> int:
        return self.pipeline.requests

    # ---------------------------------------------------------------- setup
    def _signals(self) -> None:
        def stop(graceful: bool):
            def handler(signum, frame):
                self.running = False
                self.graceful = self.graceful and graceful
            return handler

        signal.signal(signal.SIGTERM, stop(True))
        signal.signal(signal.SIGINT, stop(False))
        signal.signal(signal.SIGQUIT, stop(False))
        signal.signal(signal.SIGHUP, stop(True))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def run(self) -> int:
        self._signals()
        import gc

        gc.freeze()  # what the master loaded stays shared with it, copy-on-write
        pipeline = self.pipeline
        flags = EPOLLIN | getattr(select, "EPOLLEXCLUSIVE", 0)
        for fd, listener in self.listeners.items():
            listener.sock.setblocking(False)
            self.ep.register(fd, flags)
        self.ep.register(self.wake_r, EPOLLIN)
        runner_fd = pipeline.runner.wake_fd
        if runner_fd >= 0:
            self.ep.register(runner_fd, EPOLLIN)
        control_fd = -1
        if self.control is not None:
            control_fd = self.control.fileno()
            self.control.setblocking(False)
            self.ep.register(control_fd, EPOLLIN)
        signals_fd = -1
        if RT.channels is not None and self.control is not None:  # uWSGI signals for "any worker"
            signals_fd = RT.channels["workers"].fileno()
            self.ep.register(signals_fd, EPOLLIN)
        RT.request_count = lambda: pipeline.requests + 1
        if RT.total_requests() == 0 and self.board is None:
            RT.total_requests = lambda: pipeline.requests
        self._tell_master(b"R")
        RT.ready = True  # (without a master nobody else says so)
        if RT.control_backlog:  # master messages a signal_wait() in @postfork read before the loop existed
            data, RT.control_backlog = RT.control_backlog, b""
            self._control(data)
        if self.health is not None:
            self.health.start()
        conns = pipeline.conns
        listeners = self.listeners
        log = self.log
        logging = log.enabled
        next_sweep = time.monotonic() + 1.0
        deadline = 0.0
        while True:
            if not self.running:
                if not self.stopping:
                    deadline = self._begin_stop()
                if not conns or self.now > deadline:
                    break
            events = self.ep.poll(1.0 if self.running else 0.1)
            if not events and self.running and self.accepting:
                # a quiet second: look at the listen queues anyway. EPOLLEXCLUSIVE wakes one worker per new
                # connection, and it may pick one whose loop cannot run (an app thread holds the GIL), so a
                # connection could wait in the backlog while this worker idles
                for listener in listeners.values():
                    self._accept(listener)
            self.now = time.monotonic()
            wall = time.time()
            http_date(wall)
            if logging:
                log.ctime = ctime_now(wall)
            for fd, ev in events:
                conn = conns.get(fd)
                if conn is not None:
                    try:
                        if ev & EPOLLOUT or (ev & ~EPOLLIN and conn.state == 2):
                            pipeline.writable(conn)
                        else:
                            pipeline.readable(conn)
                    except Exception:  # noqa: BLE001 - a bug must cost one connection, never the worker
                        pipeline.failed(conn)
                elif fd in listeners:
                    if self.running:
                        self._accept(listeners[fd])
                elif fd == runner_fd:
                    for conn, result in pipeline.runner.collect():
                        try:
                            pipeline.returned(conn, result)
                        except Exception:  # noqa: BLE001
                            pipeline.failed(conn)
                elif fd == self.wake_r:
                    self._woken()
                elif fd == control_fd:
                    self._from_master()
                elif fd == signals_fd:
                    self._signal(RT.channels["workers"].receive())
            if log.buffer:
                log.flush()
            if self.now >= next_sweep:
                if self.health is not None:
                    self.health.tick(self.now)
                pipeline.sweep(self.now, self.stopping)
                next_sweep = self.now + 1.0
        pipeline.finish()
        log.flush()
        return 0

    def _accept(self, listener: Listener) -> None:
        try:
            self.pipeline.accept(listener)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, never the worker
            import traceback

            self.log.error(f"uisge worker {self.worker_id}: internal error while accepting on {listener.name}:\n"
                           + traceback.format_exc())

    def _woken(self) -> None:
        drain_pipe(self.wake_r)

    def _tell_master(self, message: bytes) -> None:
        if self.control is not None:
            try:
                self.control.send(message)
            except OSError:
                pass

    def _from_master(self) -> None:
        try:
            data = self.control.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the master is gone: nobody would respawn or stop us; finish and leave
            self.log.error(f"uisge worker {self.worker_id} (pid: {os.getpid()}): the master disconnected from "
                           f"this worker; shutting down")
            self.ep.unregister(self.control.fileno())
            self.control = None
            self.running = False
            return
        if RT.control_backlog:  # what a uwsgi.signal_wait() in app code read and left for the loop
            data, RT.control_backlog = RT.control_backlog + data, b""
        self._control(data)

    def _control(self, data: bytes) -> None:
        at = 0
        while at < len(data):  # b"l": reopen the log; b"S" + a number: a uWSGI signal for this worker
            letter = data[at:at + 1]
            if letter == b"l" and self.reopen_log is not None:
                self.reopen_log()
            elif letter in (b"p", b"u"):
                self._accepting(letter == b"u")
            elif letter == b"S" and at + 1 < len(data):
                self._signal(b"s" + data[at + 1:at + 2])
                at += 1
            at += 1

    def _accepting(self, on: bool) -> None:
        """Pause (the master's SIGTSTP) or resume accepting: while paused new connections wait in the listen
        backlog; the connections already open are served."""
        if self.stopping or on == self.accepting:
            return
        self.accepting = on
        flags = EPOLLIN | getattr(select, "EPOLLEXCLUSIVE", 0)
        for fd in self.listeners:
            try:
                if on:
                    self.ep.register(fd, flags)
                else:
                    self.ep.unregister(fd)
            except (OSError, ValueError):
                pass

    def _signal(self, message: bytes | None) -> None:
        """Run a uWSGI signal handler between requests (uWSGI shows the worker as `sig<N>` meanwhile)."""
        if message is None or not self.running:
            return
        RT.handle(message)

    # ---------------------------------------------------------------- stop
    def _begin_stop(self) -> float:
        """Stop accepting. A graceful stop first serves what waits in the listen backlog; idle keep-alive
        connections close now, requests already begun are finished (keep-alive off). Returns the deadline."""
        self.stopping = True
        if self.graceful:
            for listener in self.listeners.values():
                while self.pipeline.accept(listener):
                    pass
        for fd in list(self.listeners):
            if not self.accepting:
                break  # paused: not in the epoll set
            try:
                self.ep.unregister(fd)
            except (OSError, ValueError):
                pass
        self.pipeline.close_idle()
        return time.monotonic() + (self.opts.worker_reload_mercy if self.graceful else 1.0)
