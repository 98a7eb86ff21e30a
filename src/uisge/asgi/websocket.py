"""One websocket of an ASGI app (RFC 6455), on an `http`/`http-socket` listener: the app's `receive` and `send`
and the connection's bytes, with wsproto (sans-IO) doing the handshake check and the framing.

`receive` gives websocket.connect, then each whole message (fragments joined, at most websockets-max-size
bytes, else a 1009 close), then websocket.disconnect with the close code. `send` takes websocket.accept (the
101 answer), websocket.send and websocket.close; before the accept, websocket.close is a 403 and the
websocket.http.response extension sends the app's own denial answer. Pings are answered, closes echoed.

Memory is bounded both ways: a send waits while the output buffer is above its high-water mark, and the socket
is not read while the app has INBOX_MAX messages it has not taken. Keepalive as uWSGI's: a ping after
websockets-ping-freq s without a frame from the client, the connection cut when no pong comes within
websockets-pong-tolerance s; a client that reads nothing for socket-timeout is cut. A stopping worker says
1001 (going away).

The socket is closed as soon as the close handshake is over (or the peer is gone), the request counted and
logged once both that happened and the app returned. This module neither accepts connections nor runs the app
(asgi/runner.py does), and never writes to a descriptor it has closed.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections import deque
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Ping, RejectConnection,
                            RejectData, Request, TextMessage)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from uisge.errors import ClientGone
from uisge.worker.connection import EPOLLIN, EPOLLOUT
from uisge.wsgi.adapter import AppError, error_response

INBOX_MAX = 16  # messages received and not yet taken by the app before the socket is no longer read
CLOSE_WAIT = 5.0  # seconds our close waits for the client's before the socket is closed anyway
READ_SIZE = 65536
GOING_AWAY, INTERNAL_ERROR, TOO_BIG, ABNORMAL = 1001, 1011, 1009, 1006


class Disconnected(ClientGone, OSError):
    """send() on a websocket that is closed (the ASGI spec asks for an OSError)."""


class Limits:
    """The websocket options of one worker: websockets-max-size (KiB), -ping-freq and -pong-tolerance (s),
    socket-timeout (s)."""

    __slots__ = ("max_size", "ping_freq", "pong_tolerance", "timeout")

    def __init__(self, opts: Any) -> None:
        self.max_size = (opts.websockets_max_size or 1024) * 1024
        self.ping_freq = float(opts.websockets_ping_freq or 30)
        self.pong_tolerance = float(opts.websockets_pong_tolerance or 3)
        self.timeout = float(opts.socket_timeout or 60)


def is_websocket(head: Any) -> bool:
    """An HTTP Upgrade request asking for a websocket (the handshake itself is checked by wsproto)."""
    return head.upgrade and any(name.lower() == b"upgrade" and value.strip().lower() == b"websocket"
                                for name, value in head.headers)


class WebSocket:
    def __init__(self, conn: Any, pipeline: Any, loop: asyncio.AbstractEventLoop, limits: Limits) -> None:
        self.conn = conn
        self.pipeline = pipeline
        self.loop = loop
        self.limits = limits
        self.proto = WSConnection(ConnectionType.SERVER)
        self.subprotocols: list[str] = []
        self.connected = False  # websocket.connect was given to the app
        self.accepted = False
        self.denied = False  # answered with an HTTP response instead (403 or the app's own)
        self.closing = 0.0  # when our close frame went out (0: not yet)
        self.ended = False  # the client closed or is gone: receive() says disconnect once the inbox is empty
        self.code = ABNORMAL
        self.app_done = False
        self.counted = False
        self.inbox: deque[dict] = deque()
        self.waiter: asyncio.Future | None = None  # receive() waiting for a message
        self.drained: asyncio.Future | None = None  # send() waiting for the output buffer to drain
        self.parts: list = []  # the fragments of the message being received
        self.size = 0
        now = pipeline.worker.now
        self.last_in = now  # the last frame from the client
        self.progress = now  # the last time the socket took bytes
        self.ping_at = 0.0  # when our unanswered ping went out (0: none)

    # ---------------------------------------------------------------- handshake
    def handshake(self, head: Any) -> RemoteProtocolError | None:
        """Check the upgrade request (None: a valid websocket handshake, its subprotocols read)."""
        try:
            self.proto.initiate_upgrade_connection(head.headers, head.target)
        except RemoteProtocolError as exc:
            return exc
        for event in self.proto.events():
            if isinstance(event, Request):
                self.subprotocols = list(event.subprotocols)
        return None

    def refuse(self, problem: RemoteProtocolError) -> None:
        """Not a valid handshake: wsproto's answer for it (400, or 426 for another protocol version)."""
        hint = problem.event_hint if isinstance(problem.event_hint, RejectConnection) else RejectConnection()
        self.pipeline.log.error(f"{self.conn.remote_addr or self.conn.listener.name}: websocket handshake refused "
                                f"({hint.status_code}): {problem}")
        self._deny(self.proto.send(hint), hint.status_code)

    # ---------------------------------------------------------------- the app's side
    async def receive(self) -> dict:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while True:
            if self.inbox:
                message = self.inbox.popleft()
                if len(self.inbox) == INBOX_MAX - 1:
                    self._watch()  # room again: read on
                return message
            if self.ended or self.denied:
                return {"type": "websocket.disconnect", "code": self.code}
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if not self.accepted:
                raise AppError("websocket.send before websocket.accept")
            text, data = message.get("text"), message.get("bytes")
            if data is not None:
                frame = Message(data=bytes(data))
            elif text is not None:
                frame = Message(data=str(text))
            else:
                raise AppError("websocket.send with neither `bytes` nor `text`")
            self._write(self._frame(frame))
            out = self.conn.out
            if out.size > self.conn.resp.high and not self.ended:
                self.drained = self.loop.create_future()
                try:
                    await self.drained
                finally:
                    self.drained = None
                if self.conn.fd < 0:
                    raise Disconnected("the websocket is closed")
        elif kind == "websocket.accept":
            if self.accepted or self.denied:
                raise AppError("websocket.accept sent twice, or after the websocket was closed")
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers") or ()]
            try:
                data = self.proto.send(AcceptConnection(subprotocol=message.get("subprotocol"), extra_headers=headers))
            except LocalProtocolError as exc:
                raise AppError(f"websocket.accept refused: {exc}") from None
            # from here on only frames: keep wsproto's frame-level connection, and let the handshake's h11
            # objects go (a third of an open websocket's memory)
            self.proto = self.proto.connection
            self.accepted = True
            board = self.pipeline.board
            if board is not None:
                board.websocket(True)
            resp = self.conn.resp
            resp.status_code = 101
            resp.header_bytes = len(data)
            resp.head_sent = True
            self._write(data)
            parser = self.conn.parser
            rest = parser.upgrade_rest
            parser.release()  # the HTTP parser's work on this connection is over
            if rest:  # frames the client sent right behind its handshake
                parser.upgrade_rest = b""
                self._received(rest)
            self._watch()
        elif kind == "websocket.close":
            if self.accepted:
                if not self.closing and not self.ended:
                    self._close(int(message.get("code") or 1000), message.get("reason") or "")
            elif not self.denied:
                self._deny(self.proto.send(RejectConnection(status_code=403)), 403)
        elif kind == "websocket.http.response.start":
            if self.accepted or self.denied:
                raise AppError("websocket.http.response.start after the handshake was answered")
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers") or ()]
            status = int(message["status"])
            data = self.proto.send(RejectConnection(status_code=status, headers=headers, has_body=True))
            resp = self.conn.resp
            resp.status_code, resp.header_bytes, resp.head_sent = status, len(data), True
            self._write(data)
        elif kind == "websocket.http.response.body":
            if self.proto.state is not ConnectionState.REJECTING:
                raise AppError("websocket.http.response.body without websocket.http.response.start")
            more = bool(message.get("more_body", False))
            data = self.proto.send(RejectData(data=bytes(message.get("body", b"")), body_finished=not more))
            self.conn.resp.body_sent += len(data)
            if more:
                self._write(data)
            else:
                self._deny(data, self.conn.resp.status_code)
        else:
            raise AppError(f"unknown ASGI message type {kind!r} for a websocket")

    def app_returned(self, error: BaseException | None) -> None:
        """The app's coroutine ended (`error`: what it raised). A handshake it left unanswered gets a 500; an
        open websocket our close (1000, or 1011 after an error)."""
        self.app_done = True
        open_ws = self.accepted and not self.closing and not self.ended
        if error is not None:
            self._log_error(error)
            self.conn.resp.failed = True
        if not self.accepted and not self.denied and self.conn.fd >= 0:
            if error is None:
                self._log_error(AppError("the ASGI app returned without accepting or closing the websocket"))
            self._deny(error_response(500, "The application raised an error; see the server log.", "HTTP/1.1"), 500)
        elif open_ws:
            self._close(1000 if error is None else INTERNAL_ERROR, "")
        self._maybe_count()

    def _log_error(self, error: BaseException) -> None:
        what = f"websocket {self.conn.env.get('REQUEST_URI', '')}"
        log = self.conn.resp.log_error
        if isinstance(error, AppError):
            log(f"invalid message from the app for {what}: {error}\n")
        else:
            log(f"error in the app for {what}:\n" + "".join(traceback.format_exception(error)))

    def abandon(self) -> None:
        """The worker ends while the app still runs: the socket closes and the request is counted."""
        self.app_done = True
        self._shut()

    # ---------------------------------------------------------------- the socket's side (the loop calls these)
    def readable(self) -> None:
        try:
            data = os.read(self.conn.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._gone(ABNORMAL)
            return
        if not self.accepted:
            # before the accept (the app still deciding): kept for the accept, and not read again until then
            # (at most one read held); an end of file still ends the websocket, the app hears of it
            self.conn.parser.upgrade_rest += data
            self.pipeline.watch(self.conn, 0)
            return
        self._received(data)

    def writable(self) -> None:
        conn = self.conn
        out = conn.out
        before = out.sent
        try:
            drained = out.flush()
        except ClientGone:
            self._gone(ABNORMAL)
            return
        if out.sent != before:
            self.progress = self.pipeline.worker.now
        if drained:
            if self.denied or (self.closing and self.ended):
                self._shut()
                return
            if self.drained is not None and not self.drained.done():
                self.drained.set_result(None)
            self._watch()

    def tick(self, now: float) -> None:
        """Once a second: slow readers, unanswered pings and closes, keepalive pings."""
        conn = self.conn
        if conn.fd < 0:
            return
        limits = self.limits
        if conn.out.pending and now - self.progress > limits.timeout:
            self._cut(f"the client read nothing for socket-timeout ({limits.timeout:g} s)")
        elif self.closing:
            if now - self.closing > CLOSE_WAIT:
                self._gone(self.code)
        elif self.accepted and not self.ended and len(self.inbox) < INBOX_MAX:
            if self.ping_at:
                if now - self.ping_at > limits.pong_tolerance:
                    self._cut(f"no pong within websockets-pong-tolerance ({limits.pong_tolerance:g} s)")
            elif now - self.last_in > limits.ping_freq:
                self.ping_at = now
                self._write(self._frame(Ping()))

    def going_away(self) -> None:
        """The worker stops: an open websocket is closed with 1001, the app told once the client answers."""
        if self.accepted and not self.closing and not self.ended and self.conn.fd >= 0:
            self._close(GOING_AWAY, "the server is restarting")

    # ---------------------------------------------------------------- internals
    def _received(self, data: bytes) -> None:
        self.last_in = self.pipeline.worker.now
        self.ping_at = 0.0
        proto = self.proto
        proto.receive_data(data)
        for event in proto.events():
            cls = event.__class__
            if cls is TextMessage or cls is BytesMessage:
                if self.ended:
                    continue  # the rest of a message past our close
                self.size += len(event.data)
                if self.size > self.limits.max_size:
                    self.parts.clear()
                    self._close(TOO_BIG, f"message larger than websockets-max-size ({self.limits.max_size} bytes)")
                    self._gone(TOO_BIG, shut=False)
                    return
                self.parts.append(event.data)
                if event.message_finished:
                    parts = self.parts
                    if cls is TextMessage:
                        message = {"type": "websocket.receive", "text": parts[0] if len(parts) == 1 else "".join(parts)}
                    else:
                        message = {"type": "websocket.receive", "bytes": parts[0] if len(parts) == 1
                                   else b"".join(parts)}
                    self.parts = []
                    self.size = 0
                    self.inbox.append(message)
                    self._wake()
            elif cls is Ping:
                self._write(self._frame(event.response()))
            elif cls is CloseConnection:
                self.code = event.code
                if proto.state is ConnectionState.REMOTE_CLOSING:
                    self._write(self._frame(event.response()))
                self.ended = True
                if not self.closing:
                    self.closing = self.pipeline.worker.now
                self._wake()
                if self.conn.fd >= 0 and not self.conn.out.pending:
                    self._shut()
                return
        if len(self.inbox) >= INBOX_MAX:
            self._watch()  # the app is behind: stop reading until it takes some

    def _frame(self, event: Any) -> bytes:
        try:
            return self.proto.send(event)
        except LocalProtocolError:
            raise Disconnected("the websocket is closed") from None

    def _write(self, data: bytes) -> None:
        conn = self.conn
        if conn.fd < 0:
            raise Disconnected("the websocket is closed")
        if self.accepted:
            conn.resp.body_sent += len(data)
        out = conn.out
        try:
            out.send_now(data)
        except ClientGone:
            self._gone(ABNORMAL)
            raise Disconnected("the client is gone") from None
        if out.pending:
            self._watch()

    def _close(self, code: int, reason: str) -> None:
        """Our close frame; the socket closes when the client's comes (or after CLOSE_WAIT)."""
        self.closing = self.pipeline.worker.now
        self.code = code
        try:
            self._write(self._frame(CloseConnection(code=code, reason=reason)))
        except Disconnected:
            pass

    def _deny(self, data: bytes, status: int) -> None:
        """An HTTP answer instead of the websocket: sent, then the connection closes."""
        self.denied = True
        resp = self.conn.resp
        resp.status_code = status
        if not resp.head_sent:
            resp.head_sent = True
            resp.header_bytes = data.find(b"\r\n\r\n") + 4
            resp.body_sent = len(data) - resp.header_bytes
        try:
            self._write(data)
        except Disconnected:
            return
        self._wake()
        if not self.conn.out.pending:
            self._shut()

    def _cut(self, why: str) -> None:
        conn = self.conn
        self.pipeline.log.error(f"{conn.remote_addr or conn.listener.name}: websocket "
                                f"{conn.env.get('REQUEST_URI', '')}: {why}; cut")
        self._gone(ABNORMAL)

    def _gone(self, code: int, shut: bool = True) -> None:
        if not self.ended:
            self.code = code
        self.ended = True
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        if shut:
            self._shut()

    def _shut(self) -> None:
        """Close the socket (once); the request is counted when the app has returned too."""
        conn = self.conn
        if conn.fd >= 0:
            self.ended = True
            self.pipeline.close(conn)
            if self.accepted and self.pipeline.board is not None:
                self.pipeline.board.websocket(False)
            self._wake()
            if self.drained is not None and not self.drained.done():
                self.drained.set_result(None)
        self._maybe_count()

    def _maybe_count(self) -> None:
        if self.app_done and self.conn.fd < 0 and not self.counted:
            self.counted = True
            self.pipeline.runner.sockets.discard(self)
            self.pipeline.complete(self.conn, True)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _watch(self) -> None:
        conn = self.conn
        if conn.fd < 0:
            return
        # read while the app has room, and while a close handshake waits for the client's close
        reading = self.accepted and (self.closing or not self.ended and len(self.inbox) < INBOX_MAX)
        mask = (EPOLLIN if reading else 0) | (EPOLLOUT if conn.out.pending else 0)
        self.pipeline.watch(conn, mask)

