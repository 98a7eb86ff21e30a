"""Client connections from accept to close: bytes -> protocol events -> a ready request -> the runner ->
the response in an output buffer -> the socket, with backpressure and timeouts.

Per connection: a parser (HTTP or uwsgi, same events), the body of the request being read (RAM up to
post-buffering, then a temp file), and an output buffer. The app's iterable is pulled only while the
buffer is under its high-water mark; when the socket takes no more, the connection waits for EPOLLOUT
and the worker serves everybody else. A client that reads nothing for socket-timeout is cut.

Everything here runs in the event loop's thread except `step()`, which the runner may run in an app
thread (it is the only code that calls the app). The epoll set is the loop's; this module only asks
for interest changes through `watch()`.
"""

from __future__ import annotations

import os
import select
import socket
import time
from errno import EAGAIN, EINTR
from fcntl import F_SETFL, fcntl
from io import BytesIO
from time import perf_counter
from typing import Any, Callable

from uisge.errors import ClientGone
from uisge.protocol.events import END, Reject, RequestHead
from uisge.protocol.http import HttpParser
from uisge.protocol.uwsgi import UwsgiParser
from uisge.worker.accept import ACCEPT4, get_errno
from uisge.worker.accept import FLAGS as ACCEPT_FLAGS
from uisge.worker.output import HIGH_WATER, Output
from uisge.worker.reqlog import RequestLog, ctime_now
from uisge.worker.runner import make_runner
from uisge.worker.static import Prebuilt
from uisge.wsgi.adapter import Response, error_response
from uisge.wsgi.body import BodySink
from uisge.wsgi.environ import http_environ, uwsgi_environ

EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
NONBLOCKING = os.O_RDWR | os.O_NONBLOCK  # the flags of an accepted socket, made non-blocking in one fcntl()
READ_SIZE = 65536
FRESH_GRACE = 5.0  # seconds a stopping worker waits for the first request of a just-accepted connection
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
DEFAULT_POST_BUFFERING = 65536  # body bytes kept in RAM per connection when post-buffering is unset
SLOW_FLUSH = 0.05  # a request that took longer has its log line (and those before it) written at once

# what a step (app call or body pull, then a flush) ends with
DONE, WAIT, GONE = 1, 2, 3
# connection states (UPGRADED: an ASGI websocket, asgi/websocket.py reads and writes it)
READING, RUNNING, WRITING, UPGRADED = 0, 1, 2, 3


class Listener:
    """A bound, listening socket (made by the master) and what it speaks."""

    __slots__ = ("sock", "fd", "proto", "name", "base", "tcp", "local", "family", "type", "option", "address",
                 "path", "http", "parser")

    def __init__(self, sock: socket.socket, proto: str, name: str, base: dict[str, Any], option: str = "",
                 address: str = "", path: str | None = None) -> None:
        self.option = option  # where it came from: `socket = /run/app.sock` -> ("socket", "/run/app.sock")
        self.address = address
        self.path = path  # a unix socket file that vacuum removes
        self.sock = sock
        self.fd = sock.fileno()
        self.proto = proto  # "http" or "uwsgi"
        self.http = proto == "http"
        self.parser = None  # the uwsgi parser class for this listener (the worker's pipeline sets it)
        self.name = name
        self.base = base
        self.tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        self.local = not self.tcp
        self.family = int(sock.family)  # plain ints: socket.accept() converts them to enums each call
        self.type = int(sock.type)


class Conn:
    """One client connection (a raw descriptor: no socket object on the hot path). What rarely changes
    is a class default, so accepting a connection sets four fields."""

    state = READING
    mask = 0  # what the epoll set watches for it (0: not in the set)
    fresh = True  # no request dispatched yet: a stopping worker still owes it an answer
    head: RequestHead | None = None
    ws: Any = None  # the websocket it became (asgi/websocket.py's WebSocket)
    cycle: Any = None  # the ASGI request running on it (asgi/runner.py's Cycle)
    upload: Any = None  # its request body, streamed to the ASGI app (asgi/body.py's Upload)
    sink: BodySink | None = None
    pending: list | None = None  # events parsed past a request that is being served (pipelining)
    out: Output | None = None
    resp: Response | None = None
    env: dict | None = None
    t0 = 0.0
    trusted = True  # may set wsgi.url_scheme through X-Forwarded-Proto (unix sockets, loopback peers)

    served = 0  # requests answered on it, counted only for http-keepalive-requests
    remote_addr = ""  # the HTTP peer (REMOTE_ADDR/REMOTE_PORT; unix sockets have none)
    remote_port = ""

    def __init__(self, fd: int, listener: Listener, parser, now: float) -> None:
        self.fd = fd
        self.listener = listener
        self.parser = parser
        self.last = now  # the last progress (bytes in or out)



class Pipeline:
    """The request path of one worker: what the event loop calls for each connection event."""

    forget_on_close = False  # the loop is asyncio's (worker/aloop.py): unregister a descriptor before closing it
    # the connection stays watched while its request runs (ASGI: a client gone is told to the app; the
    # runner's readable_while_running() takes the event)
    read_while_running = False
    stream_bodies = False  # a request with a body is dispatched at its head (ASGI: runner.stream())

    def __init__(self, worker, opts, apps: list[tuple[str, Callable]], log: RequestLog, health, board, static,
                 current) -> None:
        self.worker = worker  # the loop: its epoll set, `now`, `running`, `stopping`
        self.ep = worker.ep
        self.opts = opts
        self.default_app = apps[0][1]
        # manage-script-name: (prefix matched, SCRIPT_NAME given, app), the longest prefix first; a mountpoint
        # written with a trailing slash matches without it and is given with it, as uWSGI does
        self.mounts = sorted(((m.rstrip("/"), m, app) for m, app in apps[1:]), key=lambda a: -len(a[0])) \
            if opts.manage_script_name else []
        self.log = log
        self.logging = log.enabled
        self.health = health
        self.board = board
        self.static = static
        self.current = current
        self.conns: dict[int, Conn] = {}
        self.requests = 0
        self.max_head = max(1024, opts.buffer_size)
        self.max_body = opts.limit_post
        self.max_vars = opts.max_vars
        self.spill = opts.post_buffering or DEFAULT_POST_BUFFERING
        self.timeout = float(opts.socket_timeout or 60)
        self.idle_timeout = float(opts.http_timeout or 75)
        self.keepalive = opts.http_keepalive
        self.keepalive_requests = opts.http_keepalive_requests
        self.allow_underscore = opts.allow_underscore_headers
        self.extra_lines = [f"{n.strip()}: {v.strip()}\r\n".encode("latin-1")
                            for n, _, v in (h.partition(":") for h in opts.add_header)]
        for listener in worker.listeners.values():
            if not listener.http:
                listener.parser = UwsgiParser.configured(self.max_head, self.max_body, self.max_vars, listener.name,
                                                         listener.base)
        self.runner = make_runner(max(1, opts.threads), self.step)
        self.inline = self.runner.wake_fd < 0  # app code runs here, in the loop's thread
        # a request's duration is needed: for its log line, the log filters, the scoreboard, or an app using the
        # uwsgi module, which may call uwsgi.log_this_request() (only such apps have `current`)
        self.timed = self.logging or log.filters or board is not None or current is not None
        self.http_response = Response.configured(True, self.extra_lines, self.timeout, HIGH_WATER, log.error)
        self.uwsgi_response = Response.configured(False, [], self.timeout, HIGH_WATER, log.error)

    # ---------------------------------------------------------------- accept and read
    def accept(self, listener: Listener) -> bool:
        """Accept what waits (up to 64); True when there may be more."""
        accept = listener.sock._accept  # the raw descriptor: no socket object per connection
        accept4 = ACCEPT4 if listener.local else None  # one call, no address (nobody reads a unix peer's)
        lfd = listener.fd
        conns = self.conns
        now = self.worker.now
        http = listener.http
        runner = self.runner
        for _ in range(64):
            if runner.busy >= runner.size and not self.worker.stopping:
                # every app thread is busy: a connection taken now would wait for one while another worker
                # may be idle; it stays in the listen queue (this worker's epoll reports it again)
                return False
            if accept4 is not None:
                fd = accept4(lfd, None, None, ACCEPT_FLAGS)  # already non-blocking and close-on-exec
                if fd < 0:
                    err = get_errno()
                    if err != EAGAIN and err != EINTR:  # EMFILE and friends: say so, keep serving the others
                        self.log.error(f"accept() on {listener.name} failed: [Errno {err}] {os.strerror(err)}")
                    return False
            else:
                try:
                    fd, addr = accept()
                except (BlockingIOError, InterruptedError):
                    return False
                except OSError as exc:  # EMFILE and friends: say so, keep serving the others
                    self.log.error(f"accept() on {listener.name} failed: {exc}")
                    return False
                fcntl(fd, F_SETFL, NONBLOCKING)  # TCP_NODELAY comes from the listener (Linux copies it on accept)
            if http:
                conn = Conn(fd, listener, HttpParser(self.max_head, self.max_body), now)
                if listener.tcp:
                    host = addr[0]
                    conn.remote_addr = host = host[7:] if host.startswith("::ffff:") else host
                    conn.remote_port = str(addr[1])
                    if host != "127.0.0.1" and host != "::1":
                        conn.trusted = False
            else:
                conn = Conn(fd, listener, listener.parser(), now)
            conns[fd] = conn
            # The client (nginx above all) usually sent its request along with the connect: read it now,
            # and a connection that is served and closed at once never enters the epoll set.
            try:
                self.readable(conn)
                if conn.state == READING and not conn.mask and fd in conns:
                    self.watch(conn, EPOLLIN)
                    if self.inline and not self.worker.stopping:
                        # its request is not here yet: accepting and serving more now would leave it waiting
                        # behind their app calls, while the other workers idle; the listener stays readable
                        # (a stopping worker drains the whole backlog instead)
                        return False
            except Exception:  # noqa: BLE001 - a bug must cost one connection, never the worker
                self.failed(conn)
        return True

    def watch(self, conn: Conn, mask: int) -> None:
        if conn.mask == mask:
            return
        if not mask:
            self.ep.unregister(conn.fd)
        elif conn.mask:
            self.ep.modify(conn.fd, mask)
        else:
            self.ep.register(conn.fd, mask)
        conn.mask = mask

    def readable(self, conn: Conn) -> None:
        try:
            data = os.read(conn.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            self.close(conn)
            return
        conn.last = self.worker.now
        events = conn.parser.feed(data)
        if events:
            if conn.fresh and data[:1] == b"\0" and events[-1].__class__ is Reject and conn.listener.http:
                # an HTTP request never starts with a NUL byte; a uwsgi packet (modifier1 = 0) does
                events[-1] = Reject(400, f"this is an HTTP socket ({conn.listener.name}), but a uwsgi-protocol "
                                         f"packet arrived: point nginx's uwsgi_pass at a `socket =` address, or "
                                         f"use proxy_pass http://{conn.listener.name} for this one")
            self.serve(conn, events)

    def serve(self, conn: Conn, events: list) -> None:
        """Consume parsed events; run each request they complete, one at a time, in order."""
        if len(events) == 2 and events[1] is END and events[0].__class__ is RequestHead \
                and not events[0].content_length:
            conn.head = events[0]  # the common case: one whole request without a body
            result = self.dispatch(conn)
            if result is None:
                return
            if result == DONE:
                self.complete(conn, False)
            else:
                self.after(conn, result)
            return
        while True:
            ready = False
            for i, ev in enumerate(events):
                cls = ev.__class__
                if cls is bytes:
                    conn.sink.write(ev)
                elif cls is RequestHead:
                    conn.head = ev
                    if ev.content_length:
                        if ev.expect_continue:
                            try:
                                os.write(conn.fd, CONTINUE)
                            except OSError:
                                pass
                        if self.stream_bodies:  # the app runs now and takes the body as it arrives
                            self.runner.stream(conn, events[i + 1:])
                            return
                        conn.sink = BodySink(self.spill)
                elif ev is END:
                    if i + 1 < len(events):
                        conn.pending = events[i + 1:]
                    ready = True
                    break
                else:
                    self.reject(conn, ev)
                    return
            if not ready:
                if conn.mask != EPOLLIN and conn.state == READING:
                    self.watch(conn, EPOLLIN)  # the rest of a request that arrived pipelined behind the last one
                return
            result = self.dispatch(conn)
            if result is None:
                return  # an app thread has it
            if not self.after(conn, result):
                return
            events = conn.pending
            if not events:
                return
            conn.pending = None

    # ---------------------------------------------------------------- run a request
    def dispatch(self, conn: Conn) -> int | None:
        """A whole request (head and body) is in: build the environ and hand it to the runner."""
        head = conn.head
        conn.fresh = False
        if self.timed:
            conn.t0 = perf_counter()
        out = conn.out
        if out is None:
            out = conn.out = Output(conn.fd)  # one per connection: empty again after each response
        if head.proto == "http":
            env = http_environ(conn.listener.base, conn.remote_addr, conn.remote_port, head, self.allow_underscore,
                               conn.trusted)
            keep = head.keep_alive and self.keepalive and self.worker.running
            if keep and self.keepalive_requests:
                conn.served += 1
                keep = conn.served < self.keepalive_requests  # http-keepalive-requests: this one is the last
            resp = self.http_response(out, head.version, head.method == b"HEAD", keep)
        else:
            env = uwsgi_environ(head)
            resp = self.uwsgi_response(out, head.version, env["REQUEST_METHOD"] == "HEAD", False)
        sink = conn.sink
        env["wsgi.input"] = sink.input() if sink is not None else BytesIO()
        conn.env = env
        conn.resp = resp
        conn.state = RUNNING
        if self.board is not None:
            self.board.begin()
        if self.inline:
            return self.step(conn)
        if conn.mask and not self.read_while_running:
            self.watch(conn, 0)
        return self.runner.submit(conn)

    def step(self, conn: Conn) -> int:
        """Run app code for the request (the call, or pulling more of its body) and write what the socket
        takes. Runs in the loop's thread (Inline) or an app thread (ThreadPool); touches only `conn`."""
        resp = conn.resp
        env = conn.env
        health = self.health
        if health is not None:
            health.begin(env, resp)
        if self.current is not None:
            self.current.env = env  # uwsgi.set_logvar() and friends find the request here
        try:
            if not resp.called:
                if self.static is None:
                    resp.call(self._app_for(env) if self.mounts else self.default_app, env)
                else:
                    found = self.static.match(env)
                    if found is None:
                        resp.call(self._app_for(env) if self.mounts else self.default_app, env)
                    elif found.__class__ is Prebuilt:
                        resp.send_prebuilt(found)
                    else:
                        resp.call(found, env)
            elif not resp.done:
                resp.pump(env)
            out = resp.out
            while True:
                if (out.parts or out.file_left) and not out.flush():
                    return WAIT
                if resp.done:
                    return DONE
                resp.pump(env)
        except ClientGone:
            return GONE
        finally:
            if health is not None:
                health.leave()

    def _app_for(self, env: dict):
        """manage-script-name: the longest mount prefix of PATH_INFO moves to SCRIPT_NAME."""
        path = env["PATH_INFO"]
        for prefix, mountpoint, app in self.mounts:
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                env["SCRIPT_NAME"] = mountpoint
                env["PATH_INFO"] = path[len(mountpoint):]  # "" when the path is the mountpoint without its slash
                return app
        return self.default_app

    def after(self, conn: Conn, result: int) -> bool:
        """Act on a step's result; True when the connection is ready for its next request."""
        if result == WAIT:
            conn.state = WRITING
            conn.last = self.worker.now
            self.watch(conn, EPOLLOUT)
            return False
        return self.complete(conn, result == GONE)

    def writable(self, conn: Conn) -> None:
        out = conn.resp.out
        before = out.sent
        try:
            drained = out.flush()
        except ClientGone:
            self.complete(conn, True)
            return
        if out.sent != before:
            conn.last = self.worker.now
        if not drained:
            return
        if conn.resp.done:
            if self.complete(conn, False) and conn.pending:
                events, conn.pending = conn.pending, None
                self.serve(conn, events)
            return
        conn.state = RUNNING  # the buffer drained: pull more of the body
        if not self.inline:
            self.watch(conn, 0)
        result = self.runner.submit(conn)
        if result is not None and self.after(conn, result) and conn.pending:
            events, conn.pending = conn.pending, None
            self.serve(conn, events)

    def returned(self, conn: Conn, result: int) -> None:
        """An app thread finished a step of this connection."""
        if conn.fd not in self.conns:
            return
        if self.after(conn, result):
            events, conn.pending = conn.pending, None
            if events:
                self.serve(conn, events)

    def complete(self, conn: Conn, gone: bool) -> bool:
        """The request is over (answered, or its client is gone): count and log it, then either keep the
        connection for the next request (True) or close it."""
        resp = conn.resp
        if not resp.closed:
            resp.close_iterable()
        if conn.sink is not None:
            conn.sink.discard()
            conn.sink = None
        self.requests = n = self.requests + 1
        if self.timed:
            self._account(conn, resp, n)
        if self.health is not None:
            self.health.end(n)
        if gone or resp.cut or not resp.keep_alive or not self.worker.running:
            self.close(conn)
            return False
        conn.resp = conn.env = conn.head = None
        conn.state = READING
        conn.last = self.worker.now
        if conn.mask != EPOLLIN and not conn.pending:
            self.watch(conn, EPOLLIN)
        return True

    def _account(self, conn: Conn, resp: Response, n: int) -> None:
        """The scoreboard and the request log line (only when either is on)."""
        env = conn.env
        head = conn.head
        duration = perf_counter() - conn.t0
        if self.board is not None:
            self.board.end(duration, resp.body_sent + resp.header_bytes, resp.failed)
        if self.logging or "uwsgi.log_this" in env or (self.log.filters and self.log.matches(resp.status_code, resp.body_sent, duration,
                                                                  resp.sent_file)):
            nvars = head.count * 2 if head.proto == "uwsgi" else (len(env) - 9) * 2
            if self.log.plain:
                self.log.fast(env, resp, duration, nvars, head.size, n)
            else:
                self.log.request(env, resp.status_code, resp.body_sent, resp.header_count + (1 if resp.http else 0),
                                 resp.header_bytes, time.time() - duration, duration, nvars, head.size, n, n, 0)
            if duration > SLOW_FLUSH:
                # lines wait for the end of the loop round only when rounds are short; the next request of
                # this round is stamped with its own second, not the round's
                self.log.flush()
                self.log.ctime = ctime_now(time.time())

    # ---------------------------------------------------------------- refuse and close
    def reject(self, conn: Conn, reject: Reject) -> None:
        name = conn.listener.name
        http = conn.listener.http
        if reject.status:
            peer = conn.remote_addr
            self.log.error(f"{peer or name}: {reject.status} {reject.reason} (on {name})")
            try:
                os.write(conn.fd, error_response(reject.status, reject.reason, "HTTP/1.1" if http else "HTTP/1.0"))
                sock = socket.socket(fileno=conn.fd)
                try:
                    sock.shutdown(socket.SHUT_WR)  # the answer is read before the close resets anything
                finally:
                    sock.detach()
            except OSError:
                pass
        else:
            self.log.error(f"{name}: {reject.reason}; connection closed")
        self.close(conn)

    def failed(self, conn: Conn) -> None:
        """A bug in uisge while serving this connection (an exception that escaped): say where, drop this
        connection only, and go on serving every other one."""
        import traceback

        self.log.error(f"uisge worker {self.worker.worker_id}: internal error while serving a connection on "
                       f"{conn.listener.name}; the connection is closed, the worker goes on:\n"
                       + traceback.format_exc())
        if conn.state == RUNNING and not self.inline:
            return  # an app thread owns it: its result closes it
        self.close(conn)

    def close(self, conn: Conn) -> None:
        """Close once: the descriptor number is forgotten first, so it can never close a newer connection's."""
        fd = conn.fd
        if fd < 0:
            return
        conn.fd = -1
        del self.conns[fd]
        if conn.listener.http:
            conn.parser.release()  # else llhttp and the parser keep each other alive until a GC pass
        if conn.sink is not None:
            conn.sink.discard()
            conn.sink = None
        if self.forget_on_close:
            self.ep.forget(fd)  # (an asyncio loop's selector keeps closed descriptors otherwise)
        try:
            os.close(fd)  # closing the descriptor takes it out of the epoll set: no epoll_ctl(DEL) needed
        except OSError:
            pass

    # ---------------------------------------------------------------- timeouts and stop
    def sweep(self, now: float, stopping: bool) -> None:
        for conn in list(self.conns.values()):
            state = conn.state
            if state == RUNNING or state == UPGRADED:
                continue  # app code runs (harakiri's business), or a websocket keeps its own time
            idle = now - conn.last
            if state == WRITING:
                if idle > self.timeout:
                    self.log.error(f"{conn.remote_addr or conn.listener.name}: the client read "
                                   f"nothing of its response for socket-timeout ({self.timeout:g} s); cut")
                    self.complete(conn, True)
                continue
            parser = conn.parser
            reading = parser.in_head or parser.in_body
            if stopping and conn.fresh and not reading and idle > FRESH_GRACE:
                self.close(conn)  # accepted while we drained, but the client never sent a request
            elif reading and idle > self.timeout:
                self.reject(conn, Reject(408, f"request not received within socket-timeout ({self.timeout:g} s)"))
            elif not reading and idle > (self.idle_timeout if conn.listener.http else self.timeout):
                self.close(conn)

    def close_idle(self) -> None:
        """A stop began: idle keep-alive connections close now; requests begun are finished."""
        for conn in list(self.conns.values()):
            parser = conn.parser
            if conn.state == READING and not conn.fresh and not (parser.in_head or parser.in_body or conn.pending):
                self.close(conn)

    def finish(self) -> None:
        for conn in list(self.conns.values()):
            if conn.state != READING:
                self.log.error(f"uisge worker {self.worker.worker_id}: a request was still running at the end "
                               f"of worker-reload-mercy ({self.opts.worker_reload_mercy} s); cut")
            self.close(conn)
        self.runner.stop()
