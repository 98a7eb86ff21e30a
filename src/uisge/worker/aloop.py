"""The worker's event loop for ASGI apps: the same Worker (listeners, pipeline, control socket, uWSGI signals,
health, stop) driven by an asyncio loop (uvloop when installed) instead of a bare epoll, so that the app's
coroutines run on the loop that serves the sockets. Descriptors go through loop.add_reader/add_writer behind
an epoll-shaped shim, so the pipeline's code is the same for both; what runs the app is asgi/runner.py.
"""

from __future__ import annotations

import asyncio
import time

from uisge.asgi.lifespan import Lifespan
from uisge.asgi.runner import AsyncRunner
from uisge.master.policy import EXIT_APP
from uisge.tasks.runtime import RT
from uisge.worker.connection import EPOLLIN, EPOLLOUT
from uisge.worker.loop import Worker
from uisge.worker.reqlog import ctime_now
from uisge.wsgi.adapter import http_date


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopPoller:
    """epoll's register/modify/unregister over an asyncio loop's readers and writers. A reader is taken out
    lazily (when an event comes for a descriptor nobody watches any more): a connection is unwatched and
    watched again around every request it runs, and most see no event meanwhile, so this spares two
    selector changes per request. Writers go at once (a writable socket would fire without end)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_in, on_out) -> None:
        self.loop = loop
        self.on_in = on_in
        self.on_out = on_out
        self.wanted: dict[int, int] = {}
        self.reading: set[int] = set()
        self.writing: set[int] = set()

    def register(self, fd: int, mask: int) -> None:
        self.wanted[fd] = mask
        if mask & EPOLLIN and fd not in self.reading:
            self.loop.add_reader(fd, self._in, fd)
            self.reading.add(fd)
        if mask & EPOLLOUT:
            if fd not in self.writing:
                self.loop.add_writer(fd, self.on_out, fd)
                self.writing.add(fd)
        elif fd in self.writing:
            self.loop.remove_writer(fd)
            self.writing.discard(fd)

    modify = register

    def unregister(self, fd: int) -> None:
        if fd not in self.wanted:
            raise ValueError(f"descriptor {fd} is not registered")
        self.register(fd, 0)

    def forget(self, fd: int) -> None:
        """Before the descriptor is closed: out of the loop's selector for good."""
        self.wanted.pop(fd, None)
        if fd in self.reading:
            self.loop.remove_reader(fd)
            self.reading.discard(fd)
        if fd in self.writing:
            self.loop.remove_writer(fd)
            self.writing.discard(fd)

    def _in(self, fd: int) -> None:
        if self.wanted.get(fd, 0) & EPOLLIN:
            self.on_in(fd)
        else:  # nobody watches it now: stop the events until it is watched again
            self.loop.remove_reader(fd)
            self.reading.discard(fd)


class AsyncWorker(Worker):
    def __init__(self, opts, listeners, apps, worker_id: int = 1, **kwargs) -> None:
        super().__init__(opts, listeners, apps, worker_id, **kwargs)
        self.loop = new_loop()
        self.ep.close()
        self.ep = self.pipeline.ep = LoopPoller(self.loop, self._on_in, self._on_out)
        self.pipeline.forget_on_close = True  # a closed descriptor must leave the loop's selector first
        self.pipeline.read_while_running = True  # http.disconnect
        self.pipeline.stream_bodies = True  # request bodies given to receive() as they arrive
        self.pipeline.runner.stop()  # (app threads are for WSGI apps)
        self.pipeline.runner = AsyncRunner(self.pipeline, self.loop)
        self.pipeline.inline = False
        self.round_due = False
        self.deadline = 0.0
        if self.opts.threads > 1 and worker_id == 1:
            self.log.error(f"uisge: notice: `threads = {self.opts.threads}` is not used by an ASGI app: its requests "
                           f"run as coroutines on one asyncio loop per worker")

    def run(self) -> int:
        self._signals()
        import gc

        gc.freeze()
        asyncio.set_event_loop(self.loop)
        loop = self.loop
        pipeline = self.pipeline
        lifespan = Lifespan(pipeline.default_app, pipeline.runner.state)
        error = loop.run_until_complete(lifespan.startup())
        if error is not None:
            self.log.error(f"uisge worker {self.worker_id}: the app's lifespan startup failed: {error}")
            return EXIT_APP
        if not lifespan.supported and self.worker_id == 1:  # (said once, not by every worker)
            self.log.error(f"uisge worker {self.worker_id}: the app does not speak ASGI lifespan ({lifespan.reason}); "
                           f"serving without startup and shutdown events")
        for fd, listener in self.listeners.items():
            listener.sock.setblocking(False)
            self.ep.register(fd, EPOLLIN)
        self.ep.register(self.wake_r, EPOLLIN)
        self.control_fd = self.signals_fd = -1
        if self.control is not None:
            self.control.setblocking(False)
            self.control_fd = self.control.fileno()
            self.ep.register(self.control_fd, EPOLLIN)
        if RT.channels is not None and self.control is not None:
            self.signals_fd = RT.channels["workers"].fileno()
            self.ep.register(self.signals_fd, EPOLLIN)
        RT.request_count = lambda: pipeline.requests + 1
        if RT.total_requests() == 0 and self.board is None:
            RT.total_requests = lambda: pipeline.requests
        self._tell_master(b"R")
        RT.ready = True
        if RT.control_backlog:
            data, RT.control_backlog = RT.control_backlog, b""
            self._control(data)
        if self.health is not None:
            self.health.start()
            self.health.beat(self._blocking)
        self._stamp()
        loop.call_later(1.0, self._tick)
        try:
            loop.run_forever()
        finally:
            pipeline.runner.stop()
            pipeline.finish()
            loop.run_until_complete(asyncio.sleep(0))  # let cancelled tasks unwind
            error = loop.run_until_complete(lifespan.shutdown(float(self.opts.worker_reload_mercy or 60)))
            if error is not None:
                self.log.error(f"uisge worker {self.worker_id}: the app's lifespan shutdown failed: {error}")
            self.log.flush()
            loop.close()
        return 0

    # ---------------------------------------------------------------- events
    def _stamp(self) -> None:
        self.now = time.monotonic()
        wall = time.time()
        http_date(wall)
        if self.log.enabled:
            self.log.ctime = ctime_now(wall)

    def _round(self) -> None:
        """After a batch of events: what the epoll loop does at the end of each round."""
        self.round_due = False
        if self.log.buffer:
            self.log.flush()
        if not self.running:
            self._stopping()

    def _after_event(self) -> None:
        if not self.round_due:
            self.round_due = True
            self.loop.call_soon(self._round)

    def _on_in(self, fd: int) -> None:
        self.now = time.monotonic()
        pipeline = self.pipeline
        conn = pipeline.conns.get(fd)
        try:
            if conn is not None:
                state = conn.state
                if state == 2:  # WRITING: an error or hang-up shows as readable
                    pipeline.writable(conn)
                elif state == 3:  # UPGRADED
                    conn.ws.readable()
                elif state == 1:  # RUNNING: the client went away, or pipelines its next request
                    pipeline.runner.readable_while_running(conn)
                else:
                    pipeline.readable(conn)
            elif fd in self.listeners:
                if self.running:
                    self._accept(self.listeners[fd])
            elif fd == self.wake_r:
                self._woken()
            elif fd == self.control_fd:
                self._from_master()
            elif fd == self.signals_fd:
                self._signal(RT.channels["workers"].receive())
        except Exception:  # noqa: BLE001 - a bug must cost one connection, never the worker
            if conn is not None:
                pipeline.failed(conn)
        self._after_event()

    def _on_out(self, fd: int) -> None:
        self.now = time.monotonic()
        conn = self.pipeline.conns.get(fd)
        if conn is not None:
            try:
                if conn.state == 3:  # UPGRADED
                    conn.ws.writable()
                else:
                    self.pipeline.writable(conn)
            except Exception:  # noqa: BLE001
                self.pipeline.failed(conn)
        self._after_event()

    def _tick(self) -> None:
        self._stamp()
        if self.health is not None:
            self.health.tick(self.now)
            self.health.beat(self._blocking)
        self.pipeline.sweep(self.now, self.stopping)
        self.pipeline.runner.tick(self.now)
        if not self.running:
            self._stopping()
        self.loop.call_later(1.0 if self.running else 0.1, self._tick)

    def _begin_stop(self) -> float:
        deadline = super()._begin_stop()
        self.pipeline.runner.going_away()  # open websockets: a 1001 close
        return deadline

    def _blocking(self):
        """(environ, response) of the request whose code runs in the loop now (called by the harakiri
        watchdog's thread while the loop is blocked), or None."""
        task = asyncio.current_task(self.loop)
        conn = self.pipeline.runner.conn_of(task) if task is not None else None
        return (conn.env, conn.resp) if conn is not None and conn.env is not None else None

    def _stopping(self) -> None:
        if not self.stopping:
            self.deadline = self._begin_stop()
        pipeline = self.pipeline
        # done when every connection is closed and every websocket's app has returned (a consumer's
        # disconnect handler runs after its socket closed)
        if (not pipeline.conns and not pipeline.runner.sockets) or time.monotonic() > self.deadline:
            self.loop.stop()

