"""The runner for ASGI apps: each ready request becomes an asyncio Task running `app(scope, receive, send)` on the
worker's loop (worker/aloop.py), in the loop's own thread. `send` writes through the connection's Response (the
same framing as WSGI: Content-Length or chunked, HEAD, statuses without a body, keep-alive) into its output
buffer, and waits for the buffer to drain when it is above its high-water mark (the pipeline's writable()
resubmits the connection, which wakes it). A request with a body runs at its head: `receive` gives the body as
it arrives (asgi/body.py), then `http.disconnect` when the response is over or the client goes; the loop hands
this module what a running request's connection reads (readable_while_running). Websockets are
asgi/websocket.py's, harakiri's bookkeeping asgi/harakiri.py's. The protocol's bytes are the parsers'.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uisge.asgi.body import Upload
from uisge.asgi.harakiri import Deadlines, await_chain, format_chain
from uisge.asgi.scope import http_scope, websocket_scope
from uisge.asgi.websocket import Disconnected, Limits, WebSocket, is_websocket
from uisge.errors import ClientGone
from uisge.protocol.events import END
from uisge.worker.connection import EPOLLIN, RUNNING, UPGRADED
from uisge.wsgi.adapter import AppError

DONE, WAIT, GONE = 1, 2, 3  # (worker/connection.py's step results)
READ_BLOCK = 65536


class AsyncRunner:
    wake_fd = -1
    size = 1 << 30  # no limit on requests in flight: a waiting coroutine costs no thread
    busy = 0  # requests in flight (results come later, through the pipeline's returned())

    def __init__(self, pipeline, loop: asyncio.AbstractEventLoop) -> None:
        self.pipeline = pipeline
        self.loop = loop
        self.tasks: set[asyncio.Task] = set()
        self.state: dict = {}  # lifespan state, copied into each request's scope
        self.sockets: set[WebSocket] = set()  # websockets not yet counted (their app or socket still open)
        self.limits = Limits(pipeline.opts)
        harakiri = float(pipeline.opts.harakiri or 0)
        self.deadlines = Deadlines(harakiri) if harakiri else None
        self.killed: set = set()  # connections whose request harakiri cancelled
        self.uploads: set = set()  # connections whose request body is still arriving

    def submit(self, conn: Any) -> None:
        drained = getattr(conn, "drained", None)
        if drained is not None:  # the output buffer drained under a waiting send(): let it go on
            conn.drained = None
            if not drained.done():
                drained.set_result(None)
            return None
        self.busy += 1
        task = self.loop.create_task(self._serve(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if self.deadlines is not None:
            self.deadlines.add(task, conn, self.pipeline.worker.now)
            task.add_done_callback(self.deadlines.drop)
        return None

    def collect(self) -> list:
        return []

    def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    async def _serve(self, conn: Any) -> None:
        pipeline = self.pipeline
        env = conn.env
        resp = conn.resp
        result = DONE
        try:
            found = pipeline.static.match(env) if pipeline.static is not None else None
            if found is not None:
                result = self._static(conn, found)
            else:
                app = pipeline._app_for(env) if pipeline.mounts else pipeline.default_app
                head = conn.head
                if head.upgrade and head.proto == "http" and is_websocket(head):
                    await self._websocket(conn, app)
                    return  # (counted by the websocket when both it and the app are done)
                scope = http_scope(env, head.headers if head.proto == "http" else None, self.state)
                cycle = conn.cycle = Cycle(conn, self.loop, pipeline)
                try:
                    await app(scope, cycle.receive, cycle.send)
                    if not resp.done and not cycle.gone:
                        if not resp.started:
                            raise AppError("the ASGI app returned without sending http.response.start")
                        resp._finish()
                except ClientGone:
                    result = GONE
                except asyncio.CancelledError:
                    if conn not in self.killed:
                        raise  # the worker stops
                    self.killed.discard(conn)
                    result = self._timed_out(resp)
                except Exception as exc:  # noqa: BLE001 - an app failure costs its request, not the worker
                    cut = resp.head_sent and not resp.done  # a head went out: the response can only be cut
                    resp.fail(exc, env)
                    if cut:
                        result = GONE
                finally:
                    cycle.finished()
                    conn.cycle = None
                if cycle.gone:
                    result = GONE
                elif result == DONE:
                    result = DONE if resp.out.flush() else WAIT
        except ClientGone:
            result = GONE
        finally:
            self.busy -= 1
            upload = conn.upload
            if upload is not None:
                if not upload.ended:  # the app did not take the whole body: the connection cannot be reused
                    resp.keep_alive = False
                    self.uploads.discard(conn)
                conn.upload = None
        pipeline.returned(conn, result)

    # ---------------------------------------------------------------- request bodies, as they arrive
    def stream(self, conn: Any, rest: list) -> None:
        """A request with a body: its app runs now (Pipeline.serve calls this at the head); `rest` is what
        the parser gave after the head (body pieces, maybe its end, maybe the next request)."""
        pipeline = self.pipeline

        def resume() -> None:
            if conn.fd >= 0 and conn.state == RUNNING and conn.upload is not None:
                pipeline.watch(conn, EPOLLIN)

        conn.upload = Upload(lambda: pipeline.watch(conn, 0), resume, pipeline.worker.now)
        self.uploads.add(conn)
        pipeline.dispatch(conn)
        pipeline.watch(conn, EPOLLIN)
        self._body_events(conn, rest)

    def _body_events(self, conn: Any, events: list) -> None:
        upload = conn.upload
        pipeline = self.pipeline
        for i, ev in enumerate(events):
            cls = ev.__class__
            if cls is bytes:
                upload.put(ev, pipeline.worker.now)
            elif ev is END:
                upload.end()
                self.uploads.discard(conn)
                if i + 1 < len(events):  # the next request, pipelined: kept for after this one
                    conn.pending = (conn.pending or []) + events[i + 1:]
                    pipeline.watch(conn, 0)
                return
            else:  # a Reject: the body cannot be completed (limit-post, a malformed chunk)
                self._body_failed(conn, f"{ev.status} {ev.reason}", ev.status)
                return

    def _body_failed(self, conn: Any, why: str, status: int = 0) -> None:
        """The body stops short: the app's receive() says http.disconnect; the client gets `status` if no
        answer began, and the connection closes once the app returns."""
        pipeline = self.pipeline
        pipeline.log.error(f"{conn.remote_addr or conn.listener.name}: the request body of "
                           f"{conn.env.get('REQUEST_URI', '')} stopped short ({why}); the app is told "
                           f"http.disconnect")
        conn.upload.fail(why)
        self.uploads.discard(conn)
        pipeline.watch(conn, 0)
        resp = conn.resp
        if status and resp.answer_error(status, why.partition(" ")[2]):
            try:
                resp.out.flush()  # (now: the connection closes as soon as the app returns)
            except ClientGone:
                pass
        if conn.cycle is not None:
            conn.cycle.disconnected()  # (a cycle made later sees the failed upload itself)

    def readable_while_running(self, conn: Any) -> None:
        """Bytes or an end of file on a connection whose request runs (worker/aloop.py calls this). The end:
        the client is gone, the app's receive() says http.disconnect. Bytes: the next request, pipelined;
        parsed and kept for after this one, and the connection is not read again until then (at most one
        read is held)."""
        pipeline = self.pipeline
        upload = conn.upload
        streaming = upload is not None and not upload.ended
        if not streaming:
            pipeline.watch(conn, 0)
            if conn.head is not None and conn.head.upgrade:
                return  # a websocket about to start: its own reader takes these bytes (or the end) from the socket
        try:
            data = os.read(conn.fd, READ_BLOCK)
        except (BlockingIOError, InterruptedError):
            pipeline.watch(conn, EPOLLIN)
            return
        except OSError:
            data = b""
        if not data:
            if streaming:
                self._body_failed(conn, "the client closed the connection")
            elif conn.cycle is not None:
                conn.cycle.disconnected()
            pipeline.watch(conn, 0)
            return
        conn.last = pipeline.worker.now
        events = list(conn.parser.feed(data))
        if streaming:
            self._body_events(conn, events)
        else:
            conn.pending = conn.pending + events if conn.pending else events

    def conn_of(self, task: Any) -> Any:
        """The connection whose request `task` serves (harakiri only keeps that map)."""
        found = self.deadlines.due.get(task) if self.deadlines is not None else None
        return found[1] if found is not None else None

    def _timed_out(self, resp: Any) -> int:
        """The request harakiri cancelled: a 504, or a cut response when its head already went out."""
        resp.failed = True
        answered = resp.answer_error(504, f"the request ran longer than harakiri ({self.deadlines.seconds:g} s) "
                                          f"and was stopped")
        return DONE if answered else GONE

    def _harakiri(self, now: float) -> None:
        worker = self.pipeline.worker
        for task, conn, ran in self.deadlines.expired(now):
            if task.done() or conn.state == UPGRADED:
                continue
            env = conn.env
            self.pipeline.log.error(
                f"*** HARAKIRI ON WORKER {worker.worker_id} (pid: {os.getpid()}) ***: {conn.remote_addr} "
                f"{env.get('REQUEST_METHOD', '')} {env.get('REQUEST_URI') or env.get('PATH_INFO', '')} has run for "
                f"{ran:.1f} s (harakiri = {self.deadlines.seconds:g} s); its coroutine is cancelled, the worker "
                f"goes on. The coroutine was here:\n{format_chain(await_chain(task.get_coro()))}")
            self.killed.add(conn)
            task.cancel()
            worker._tell_master(b"h")

    async def _websocket(self, conn: Any, app: Any) -> None:
        if self.deadlines is not None:
            self.deadlines.drop(asyncio.current_task())  # (harakiri is for requests, not for websockets)
        ws = conn.ws = WebSocket(conn, self.pipeline, self.loop, self.limits)
        conn.state = UPGRADED
        self.sockets.add(ws)
        self.pipeline.watch(conn, EPOLLIN)  # until the accept: a client gone, or frames sent early
        problem = ws.handshake(conn.head)
        if problem is not None:
            ws.app_done = True  # the app never sees a handshake that is not one
            ws.refuse(problem)
            return
        scope = websocket_scope(conn.env, conn.head.headers, self.state, ws.subprotocols)
        error = None
        try:
            await app(scope, ws.receive, ws.send)
        except Disconnected:
            pass
        except asyncio.CancelledError:
            ws.abandon()  # the worker's last moment (past worker-reload-mercy): closed and counted
            raise
        except Exception as exc:  # noqa: BLE001 - an app failure costs its websocket, not the worker
            error = exc
        ws.app_returned(error)

    def tick(self, now: float) -> None:
        for ws in list(self.sockets):
            ws.tick(now)
        timeout = self.pipeline.timeout
        for conn in list(self.uploads):
            upload = conn.upload
            if upload is not None and not upload.paused and now - upload.last > timeout:
                self._body_failed(conn, f"408 no body bytes for socket-timeout ({timeout:g} s)", 408)
        if self.deadlines is not None:
            self._harakiri(now)

    def going_away(self) -> None:
        for ws in list(self.sockets):
            ws.going_away()

    def _static(self, conn: Any, found: Any) -> int:
        """static-map before the app, as for WSGI: a prebuilt answer or a file (through the WSGI file path)."""
        from uisge.worker.static import Prebuilt

        resp = conn.resp
        if found.__class__ is Prebuilt:
            resp.send_prebuilt(found)
        else:
            resp.call(found, conn.env)
        while not resp.done:
            resp.pump(conn.env)
        return DONE if resp.out.flush() else WAIT


class Cycle:
    """One request's receive and send."""

    __slots__ = ("conn", "loop", "pipeline", "ended", "over", "gone")

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop, pipeline: Any) -> None:
        self.conn = conn
        self.loop = loop
        self.pipeline = pipeline
        self.ended = False  # the whole body was given
        self.over: asyncio.Future | None = None  # set when the response is complete: receive() says disconnect
        upload = conn.upload
        self.gone = upload is not None and bool(upload.failed)  # the client went (or its body was refused)

    async def receive(self) -> dict:
        if not self.ended:
            upload = self.conn.upload
            if upload is None:  # no body
                self.ended = True
                return {"type": "http.request", "body": b"", "more_body": False}
            got = await upload.take()
            if got is not None:
                data, more = got
                if not more:
                    self.ended = True
                return {"type": "http.request", "body": data, "more_body": more}
            self.ended = True  # the body stopped short: the client is gone, or it was refused
            self.gone = True
            return {"type": "http.disconnect"}
        if self.over is None:
            self.over = self.loop.create_future()
            conn = self.conn
            if not conn.mask and conn.state == RUNNING:
                # the app waits for the client to go: watch its connection (a first request, taken with
                # its connection's accept, was never in the loop's selector)
                self.pipeline.watch(conn, EPOLLIN)
        await self.over
        return {"type": "http.disconnect"}

    def disconnected(self) -> None:
        self.gone = True
        self.finished()

    def finished(self) -> None:
        if self.over is not None and not self.over.done():
            self.over.set_result(None)

    async def send(self, message: dict) -> None:
        if self.gone:
            return  # nobody to send to (as uvicorn, a no-op: the app learns it from receive())
        resp = self.conn.resp
        kind = message["type"]
        if kind == "http.response.start":
            resp.start_asgi(message["status"], message.get("headers", ()))
            return
        if kind != "http.response.body":
            raise AppError(f"unknown ASGI message type {kind!r} for an HTTP request")
        if not resp.started:
            raise AppError("http.response.body sent before http.response.start")
        if resp.done:
            raise AppError("http.response.body sent after the response was complete")
        body = message.get("body", b"")
        if type(body) is not bytes:
            body = resp._bytes(body)
        if not resp.head_sent and self.conn.upload is not None and not self.conn.upload.ended:
            resp.keep_alive = False  # answered before the whole body came: the connection closes after
        if not message.get("more_body", False):
            if not resp.head_sent:
                resp.send_whole(body)
            else:
                resp._emit(body)
                resp._finish()
            return
        resp._emit(body)
        out = resp.out
        if out.size > resp.high and not out.flush():
            await self._drained()

    async def _drained(self) -> None:
        """Wait until the pipeline's writable() drained the buffer (it resubmits the connection)."""
        from uisge.worker.connection import EPOLLOUT, WRITING

        conn = self.conn
        future = conn.drained = self.loop.create_future()
        conn.state = WRITING
        conn.last = self.pipeline.worker.now
        self.pipeline.watch(conn, EPOLLOUT)
        await future
