"""The event loop of one worker process: accept, read, parse, call the app, write, repeat.

One epoll loop owns every client socket. It reads whole request heads (and bodies) before any app
code runs, so idle keep-alive connections and slow clients cost no thread. With `threads = 1` the app
is called inline (fastest); with more, whole requests go to a pool of app threads and the connection
comes back to the loop afterwards. The only code that touches client sockets, with respond.py.
"""

from __future__ import annotations

import os
import queue
import select
import signal
import socket
import threading
import time
from io import BytesIO
from time import perf_counter
from typing import Any, Callable

from uisge import compat
from uisge.errors import RequestError
from uisge.protocol.http import HttpParser
from uisge.protocol.uwsgi import DYNAMIC_VARS, UwsgiRequest, parse_header, parse_vars
from uisge.tasks.runtime import RT
from uisge.worker.health import Health, wanted as health_wanted
from uisge.worker.reqlog import RequestLog, ctime_now
from uisge.worker.static import Prebuilt, StaticFiles
from uisge.worker.respond import ClientGone, Responder, error_response, run_app
from uisge.wsgi.environ import make_input, uwsgi_environ

EPOLLIN = select.EPOLLIN
READ_SIZE = 65536
FRESH_GRACE = 5.0  # seconds a stopping worker waits for the first request of a just-accepted connection
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HTTP_METHOD_PREFIXES = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC")


class Listener:
    """A bound, listening socket (made by the master) and what it speaks."""

    __slots__ = ("sock", "fd", "proto", "name", "base", "tcp", "local", "family", "type", "option", "address",
                 "path")

    def __init__(self, sock: socket.socket, proto: str, name: str, base: dict[str, Any], option: str = "",
                 address: str = "", path: str | None = None) -> None:
        self.option = option  # where it came from: `socket = /run/app.sock` -> ("socket", "/run/app.sock")
        self.address = address
        self.path = path  # a unix socket file that vacuum removes
        self.sock = sock
        self.fd = sock.fileno()
        self.proto = proto  # "http" or "uwsgi"
        self.name = name
        self.base = base
        self.tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        self.local = not self.tcp
        self.family = int(sock.family)  # plain ints: socket.accept() converts them to enums each call
        self.type = int(sock.type)


class Conn:
    __slots__ = ("sock", "fd", "listener", "peer", "parser", "buf", "last", "busy", "trusted", "uwsgi", "fresh")

    def __init__(self, sock: socket.socket, fd: int, listener: Listener, peer: tuple[str, str], now: float) -> None:
        self.sock = sock
        self.fd = fd
        self.listener = listener
        self.peer = peer
        self.parser: HttpParser | None = None
        self.buf = bytearray()
        self.last = now
        self.busy = False
        self.trusted = listener.local or peer[0] in ("127.0.0.1", "::1")
        self.uwsgi: UwsgiRequest | None = None  # a uwsgi request whose vars are read, body maybe not yet
        self.fresh = True  # no request dispatched yet: a stopping worker still owes it an answer


class Worker:
    def __init__(self, opts, listeners: list[Listener], apps: list[tuple[str, Callable]], worker_id: int = 1,
                 control: socket.socket | None = None, reopen_log: Callable[[], None] | None = None,
                 board=None) -> None:
        self.opts = opts
        self.control = control  # our end of the master's socketpair: we say "ready", it says "reopen logs"
        self.reopen_log = reopen_log
        self.board = board  # our scoreboard slot (scoreboard.SlotWriter) when stats are served
        self.stopping = False
        self.listeners = {l.fd: l for l in listeners}
        self.apps = apps
        self.default_app = apps[0][1]
        self.mounts = sorted(apps[1:], key=lambda a: -len(a[0])) if opts.manage_script_name else []
        self.worker_id = worker_id
        self.threads = max(1, opts.threads)
        self.conns: dict[int, Conn] = {}
        self.log = RequestLog(opts)
        self.logging = self.log.enabled
        self.requests = 0
        self.running = True
        self.graceful = True
        self.max_head = max(1024, opts.buffer_size)
        self.max_body = opts.limit_post
        self.spill = opts.post_buffering or (1 << 20)
        self.timeout = float(opts.socket_timeout or 60)
        self.idle_timeout = float(opts.http_timeout or 75)
        self.keepalive = opts.http_keepalive
        self.allow_underscore = opts.allow_underscore_headers
        self.extra_lines = [f"{n.strip()}: {v.strip()}\r\n".encode("latin-1")
                            for n, _, v in (h.partition(":") for h in opts.add_header)]
        self.ep = select.epoll()
        self.returns: queue.SimpleQueue = queue.SimpleQueue()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.lock = threading.Lock()
        self.now = time.monotonic()  # read once per loop round
        self.health = Health(opts, worker_id, self._tell_master) if health_wanted(opts) else None
        self.static = StaticFiles(opts, self.log.error) or None  # None when no static option is set
        self.current = None
        if "uwsgi" in compat.imported:  # only apps that use the uwsgi module pay for the request context
            self.current = RT.current = threading.local()

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
        flags = EPOLLIN | getattr(select, "EPOLLEXCLUSIVE", 0)
        for fd, listener in self.listeners.items():
            listener.sock.setblocking(False)
            self.ep.register(fd, flags)
        self.ep.register(self.wake_r, EPOLLIN)
        control_fd = -1
        if self.control is not None:
            control_fd = self.control.fileno()
            self.control.setblocking(False)
            self.ep.register(control_fd, EPOLLIN)
        signals_fd = -1
        if RT.channels is not None and self.control is not None:  # uWSGI signals for "any worker"
            signals_fd = RT.channels["workers"].fileno()
            self.ep.register(signals_fd, EPOLLIN)
        RT.request_count = lambda: self.requests + 1
        if RT.total_requests() == 0 and self.board is None:
            RT.total_requests = lambda: self.requests
        for _ in range(self.threads if self.threads > 1 else 0):
            threading.Thread(target=self._app_thread, daemon=True).start()
        self._tell_master(b"R")
        if self.health is not None:
            self.health.start()
        next_sweep = time.monotonic() + 1.0
        deadline = 0.0
        while True:
            if not self.running:
                if not self.stopping:
                    deadline = self._begin_stop()
                if not self.conns or self.now > deadline:
                    break
            events = self.ep.poll(1.0 if self.running else 0.1)
            self.now = time.monotonic()
            if self.logging:
                self.log.ctime = ctime_now(time.time())
            for fd, _ev in events:
                conn = self.conns.get(fd)
                if conn is not None:
                    self._readable(conn)
                elif fd in self.listeners:
                    if self.running:
                        self._accept(self.listeners[fd])
                elif fd == self.wake_r:
                    self._woken()
                elif fd == control_fd:
                    self._from_master()
                elif fd == signals_fd:
                    self._signal(RT.channels["workers"].receive())
            if self.log.buffer:
                self.log.flush()
            if self.now >= next_sweep:
                self._sweep(self.now)
                next_sweep = self.now + 1.0
        self._finish()
        return 0

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
        at = 0
        while at < len(data):  # b"l": reopen the log; b"S" + a number: a uWSGI signal for this worker
            letter = data[at:at + 1]
            if letter == b"l" and self.reopen_log is not None:
                self.reopen_log()
            elif letter == b"S" and at + 1 < len(data):
                self._signal(b"s" + data[at + 1:at + 2])
                at += 1
            at += 1

    def _signal(self, message: bytes | None) -> None:
        """Run a uWSGI signal handler between requests (uWSGI shows the worker as `sig<N>` meanwhile)."""
        if message is None or not self.running:
            return
        if self.threads > 1:
            with self.lock:
                RT.handle(message)
        else:
            RT.handle(message)

    # ---------------------------------------------------------------- loop actions
    def _accept(self, listener: Listener) -> bool:
        """Accept what waits (up to 64); True when there may be more."""
        # socket.accept() is _accept() plus a socket built from enum-converted family and type, which
        # costs more than the accept itself; the listener keeps them as ints
        accept = getattr(listener.sock, "_accept", None)
        for _ in range(64):
            try:
                if accept is None:
                    sock, addr = listener.sock.accept()
                    fd = sock.fileno()
                else:
                    fd, addr = accept()
                    sock = socket.socket(listener.family, listener.type, 0, fd)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:  # EMFILE and friends: say so, keep serving the others
                self.log.error(f"accept() on {listener.name} failed: {exc}")
                return False
            sock.setblocking(False)  # TCP_NODELAY comes from the listener (Linux copies it on accept)
            if listener.tcp:
                peer = (addr[0].removeprefix("::ffff:"), str(addr[1]))
            else:
                peer = ("", "")
            conn = Conn(sock, fd, listener, peer, self.now)
            if listener.proto == "http":
                base = listener.base.copy()
                base["REMOTE_ADDR"], base["REMOTE_PORT"] = peer
                conn.parser = HttpParser(self.max_head, self.max_body, base, self.allow_underscore)
                conn.parser.on_continue = lambda c=conn: self._send_continue(c)
            self.conns[fd] = conn
            if self.threads > 1:
                self.ep.register(fd, EPOLLIN)
                continue
            # The client (nginx above all) usually sent its request along with the connect: read it now,
            # and a connection that is served and closed at once never enters the epoll set.
            self._readable(conn)
            if fd in self.conns:
                self.ep.register(fd, EPOLLIN)
        return True

    def _send_continue(self, conn: Conn) -> None:
        try:
            conn.sock.send(CONTINUE)
        except OSError:
            pass

    def _close(self, conn: Conn) -> None:
        # closing the socket takes it out of the epoll set: no epoll_ctl(DEL) needed
        self.conns.pop(conn.fd, None)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _reject(self, conn: Conn, exc: RequestError, protocol: str = "HTTP/1.1") -> None:
        self.log.error(f"{conn.peer[0] or conn.listener.name}: {exc.status} {exc.reason} "
                       f"(on {conn.listener.name})")
        try:
            conn.sock.send(error_response(exc.status, exc.reason, protocol))
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._close(conn)

    def _readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.last = self.now
        if conn.parser is not None:
            parser = conn.parser
            try:
                parser.feed(data)
            except RequestError as exc:
                if conn.fresh and data[:1] == b"\0" and not parser.done:
                    # an HTTP request never starts with a NUL byte; a uwsgi packet (modifier1 = 0) does
                    exc = RequestError(400, f"this is an HTTP socket ({conn.listener.name}), but a uwsgi-protocol "
                                            f"packet arrived: point nginx's uwsgi_pass at a `socket =` address, or "
                                            f"use proxy_pass http://{conn.listener.name} for this one")
                if parser.done:
                    self._dispatch(conn)
                if conn.fd in self.conns and not conn.busy:
                    self._reject(conn, exc)
                else:
                    self.log.error(f"{conn.peer[0]}: {exc.status} {exc.reason}")
                return
            if parser.done:
                self._dispatch(conn)
        else:
            self._uwsgi_data(conn, data)

    def _dispatch(self, conn: Conn) -> None:
        conn.fresh = False
        if self.threads > 1:
            conn.busy = True
            self.ep.unregister(conn.fd)
            self.jobs.put(conn)
            return
        if self._serve_pending(conn):
            return
        self._close(conn)

    def _serve_pending(self, conn: Conn) -> bool:
        """Serve every finished request of the connection; False when it must be closed."""
        try:
            if conn.parser is None:
                self._serve_uwsgi(conn)
                return False
            done = conn.parser.done
            while done:
                req = done.pop(0)
                if not self._serve_http(conn, req):
                    return False
            return True
        except ClientGone:
            return False

    # ---------------------------------------------------------------- HTTP
    def _app_for(self, env: dict):
        """manage-script-name: the longest mount prefix of PATH_INFO moves to SCRIPT_NAME."""
        path = env["PATH_INFO"]
        for mountpoint, app in self.mounts:
            if mountpoint and (path == mountpoint or path.startswith(mountpoint + "/")):
                env["SCRIPT_NAME"] = mountpoint
                env["PATH_INFO"] = path[len(mountpoint):]
                return app
        return self.default_app

    def _serve_http(self, conn: Conn, req) -> bool:
        t0 = perf_counter()
        env = req.env
        env["wsgi.input"] = make_input(req.body, req.body_size, self.spill) if req.body_size else BytesIO()
        if conn.trusted and "HTTP_X_FORWARDED_PROTO" in env:
            proto = env["HTTP_X_FORWARDED_PROTO"]
            if proto in ("https", "http"):
                env["wsgi.url_scheme"] = proto
        responder = Responder(conn.sock, True, req.version, req.method == b"HEAD",
                              req.keep_alive and self.keepalive and self.running, self.timeout, self.extra_lines)
        self._call_app(env, responder, t0, 0, req.head_size)
        return responder.keep_alive

    def _call_app(self, env, responder: Responder, t0: float, nvars: int, var_bytes: int) -> None:
        """Static files first, then the app (after manage-script-name); the same for HTTP and uwsgi."""
        if self.health is not None:
            self.health.begin(env, responder)
        if self.board is not None:
            self._board_begin()
        if self.current is not None:
            self.current.env = env  # uwsgi.set_logvar() and friends find the request here
        try:
            app = self._app_for(env) if self.mounts else self.default_app
            if self.static is not None:
                found = self.static.match(env)
                if found.__class__ is Prebuilt:
                    responder.send_prebuilt(found)
                    return
                app = found or app
            run_app(app, env, responder, self.log.error)
        finally:
            self._count(env, responder, t0, nvars, var_bytes)

    def _board_begin(self) -> None:
        if self.threads > 1:
            with self.lock:
                self.board.begin()
        else:
            self.board.begin()

    def _count(self, env, responder: Responder, t0: float, nvars: int, var_bytes: int) -> None:
        if self.threads > 1:
            with self.lock:
                self.requests += 1
                n = self.requests
                if self.board is not None:
                    self.board.end(perf_counter() - t0, responder.body_sent + responder.header_bytes,
                                   responder.failed)
        else:
            self.requests = n = self.requests + 1
            if self.board is not None:
                self.board.end(perf_counter() - t0, responder.body_sent + responder.header_bytes, responder.failed)
        if self.health is not None:
            self.health.end(n)
        if self.logging:
            duration = perf_counter() - t0
            if self.log.plain:
                self.log.fast(env, responder, duration, nvars or (len(env) - 9) * 2, var_bytes, n)
                return
            self.log.request(env, responder.status_code, responder.body_sent,
                             responder.header_count + (1 if responder.http else 0), responder.header_bytes,
                             time.time() - duration, duration, nvars or (len(env) - 9) * 2, var_bytes, n, n, 0)

    # ---------------------------------------------------------------- uwsgi
    def _uwsgi_data(self, conn: Conn, data: bytes) -> None:
        buf = conn.buf
        buf += data
        req = conn.uwsgi
        if req is None:
            req = self._uwsgi_head(conn, data)
            if req is None:
                return
        if len(buf) - 4 - req.pktsize >= req.content_length:
            self._dispatch(conn)

    def _uwsgi_head(self, conn: Conn, data: bytes) -> UwsgiRequest | None:
        """The request once its header and vars are in; None while they are not (or it was refused)."""
        buf = conn.buf
        if len(buf) < 4:
            return None
        if len(buf) - len(data) < 4 and bytes(buf[:4]) in _HTTP_METHOD_PREFIXES:
            self._reject(conn, RequestError(400, (
                f"this is a uwsgi-protocol socket ({conn.listener.name}), but an HTTP request arrived: point "
                f"nginx's uwsgi_pass at it, or serve HTTP with `http-socket`/`http` instead of `socket`")),
                "HTTP/1.0")
            return None
        modifier1, size, modifier2 = parse_header(buf)
        if size > self.max_head:
            self._reject(conn, RequestError(431, (
                f"invalid request block size: {size} (max {self.max_head}); raise buffer-size to accept it")),
                "HTTP/1.0")
            return None
        if len(buf) < 4 + size:
            return None
        try:
            env, nvars = parse_vars(memoryview(buf)[4 : 4 + size], self.opts.max_vars)
        except RequestError as exc:
            self._reject(conn, exc, "HTTP/1.0")
            return None
        if not DYNAMIC_VARS.isdisjoint(env):
            for key in DYNAMIC_VARS.intersection(env):
                del env[key]
        req = UwsgiRequest(modifier1, modifier2, env, nvars, size)
        if self.max_body and req.content_length > self.max_body:
            self._reject(conn, RequestError(413, f"request body of {req.content_length} bytes is larger than "
                                                 f"limit-post ({self.max_body} bytes)"), "HTTP/1.0")
            return None
        conn.uwsgi = req
        return req

    def _serve_uwsgi(self, conn: Conn) -> None:
        req = conn.uwsgi
        t0 = perf_counter()
        start = 4 + req.pktsize
        size = req.content_length
        body = [bytes(conn.buf[start : start + size])] if size else []
        env = req.vars
        environ = uwsgi_environ(conn.listener.base, req, body, size, self.spill)
        responder = Responder(conn.sock, False, env.get("SERVER_PROTOCOL") or "HTTP/1.0",
                              env.get("REQUEST_METHOD") == "HEAD", False, self.timeout, [])
        self._call_app(environ, responder, t0, req.nvars * 2, req.pktsize)

    # ---------------------------------------------------------------- threads
    def _app_thread(self) -> None:
        while True:
            conn = self.jobs.get()
            if conn is None:
                return
            keep = self._serve_pending(conn)
            self.returns.put((conn, keep))
            try:
                os.write(self.wake_w, b"r")
            except BlockingIOError:
                pass

    def _woken(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                conn, keep = self.returns.get_nowait()
            except queue.Empty:
                break
            conn.busy = False
            if not keep or conn.fd not in self.conns or not self.running:
                self.conns.pop(conn.fd, None)
                try:
                    conn.sock.close()
                except OSError:
                    pass
                continue
            conn.last = time.monotonic()
            self.ep.register(conn.fd, EPOLLIN)
            if conn.parser is not None and conn.parser.done:
                self._dispatch(conn)

    # ---------------------------------------------------------------- timeouts and stop
    def _sweep(self, now: float) -> None:
        if self.health is not None:
            self.health.tick(now)
        for conn in list(self.conns.values()):
            if conn.busy:
                continue
            idle = now - conn.last
            reading = (conn.parser is not None and (conn.parser.in_head or conn.parser.in_body)) or \
                (conn.parser is None and conn.buf)
            if self.stopping and conn.fresh and not reading and idle > FRESH_GRACE:
                self._close(conn)  # accepted while we drained, but the client never sent a request
            elif reading and idle > self.timeout:
                self._reject(conn, RequestError(408, f"request not received within socket-timeout "
                                                     f"({self.timeout:g} s)"))
            elif not reading and idle > (self.idle_timeout if conn.parser is not None else self.timeout):
                self._close(conn)

    def _begin_stop(self) -> float:
        """Stop accepting. A graceful stop first serves what waits in the listen backlog; idle keep-alive
        connections close now, requests already begun are finished (keep-alive off). Returns the deadline."""
        self.stopping = True
        if self.graceful:
            for listener in self.listeners.values():
                while self._accept(listener):
                    pass
        for fd in list(self.listeners):
            try:
                self.ep.unregister(fd)
            except (OSError, ValueError):
                pass
        for conn in list(self.conns.values()):
            # idle keep-alive connections close now; a connection accepted but not yet read is owed an answer
            if not conn.busy and not conn.fresh and not self._reading(conn):
                self._close(conn)
        return time.monotonic() + (self.opts.worker_reload_mercy if self.graceful else 1.0)

    @staticmethod
    def _reading(conn: Conn) -> bool:
        parser = conn.parser
        if parser is None:
            return bool(conn.buf)
        return parser.in_head or parser.in_body or bool(parser.done)

    def _finish(self) -> None:
        for conn in list(self.conns.values()):
            if conn.busy:
                self.log.error(f"uisge worker {self.worker_id}: a request was still running at the end of "
                               f"worker-reload-mercy ({self.opts.worker_reload_mercy} s); cut")
            self._close(conn)
        for _ in range(self.threads if self.threads > 1 else 0):
            self.jobs.put(None)
        self.log.flush()
