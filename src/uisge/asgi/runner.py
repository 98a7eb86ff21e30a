"""The runner for ASGI apps: each ready request becomes an asyncio Task running `app(scope, receive, send)` on the
worker's loop (worker/aloop.py), in the loop's own thread. `send` writes through the connection's Response (the
same framing as WSGI: Content-Length or chunked, HEAD, statuses without a body, keep-alive) into its output
buffer, and waits for the buffer to drain when it is above its high-water mark (the pipeline's writable()
resubmits the connection, which wakes it). `receive` gives the request body (received whole before the app
runs, spooled past post-buffering), then waits for the end of the response and says `http.disconnect`.
Nothing here reads a socket or knows a protocol's bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uisge.asgi.scope import http_scope
from uisge.errors import ClientGone
from uisge.protocol.status import reason
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
                scope = http_scope(env, conn.head.headers if conn.head.proto == "http" else None, self.state)
                cycle = Cycle(conn, self.loop, pipeline)
                try:
                    await app(scope, cycle.receive, cycle.send)
                    if not resp.done:
                        if not resp.started:
                            raise AppError("the ASGI app returned without sending http.response.start")
                        resp._finish()
                except ClientGone:
                    result = GONE
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - an app failure costs its request, not the worker
                    cut = resp.head_sent and not resp.done  # a head went out: the response can only be cut
                    resp.fail(exc, env)
                    if cut:
                        result = GONE
                finally:
                    cycle.finished()
                if result == DONE:
                    result = DONE if resp.out.flush() else WAIT
        except ClientGone:
            result = GONE
        finally:
            self.busy -= 1
        pipeline.returned(conn, result)

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

    __slots__ = ("conn", "loop", "pipeline", "body", "ended", "over")

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop, pipeline: Any) -> None:
        self.conn = conn
        self.loop = loop
        self.pipeline = pipeline
        self.body = conn.env["wsgi.input"]
        self.ended = False  # the whole body was given
        self.over: asyncio.Future | None = None  # set when the response is complete: receive() says disconnect

    async def receive(self) -> dict:
        if not self.ended:
            data = self.body.read(READ_BLOCK)
            more = len(data) == READ_BLOCK
            if not more:
                self.ended = True
            return {"type": "http.request", "body": data, "more_body": more}
        if self.over is None:
            self.over = self.loop.create_future()
        await self.over
        return {"type": "http.disconnect"}

    def finished(self) -> None:
        if self.over is not None and not self.over.done():
            self.over.set_result(None)

    async def send(self, message: dict) -> None:
        resp = self.conn.resp
        kind = message["type"]
        if kind == "http.response.start":
            if resp.started:
                raise AppError("http.response.start sent twice")
            status = message["status"]
            resp.start_response(f"{status} {reason(status)}", [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                                                             for k, v in message.get("headers", ())])
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
