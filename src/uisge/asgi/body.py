"""A request body streamed to an ASGI app as it arrives: the connection's reader puts the parser's body pieces
here, the app's `receive()` takes them. At most HIGH bytes wait: past that the reader stops reading the socket
until the app has taken some (the client is held back by TCP, nothing piles up in the worker).

No I/O here: `on_pause`/`on_resume` are the reader's (asgi/runner.py), which watches the socket or not.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

HIGH = 256 * 1024  # bytes of a body waiting for the app before the socket is no longer read
CHUNK = 65536  # at most this much given per receive()... unless one piece is bigger (then that piece)


class Upload:
    __slots__ = ("pieces", "size", "ended", "failed", "waiter", "paused", "on_pause", "on_resume", "last")

    def __init__(self, on_pause: Callable[[], None], on_resume: Callable[[], None], now: float) -> None:
        self.pieces: deque[bytes] = deque()
        self.size = 0
        self.ended = False  # the whole body arrived
        self.failed = ""  # the body cannot be completed (client gone, a bad chunk): why
        self.waiter: asyncio.Future | None = None
        self.paused = False
        self.on_pause = on_pause
        self.on_resume = on_resume
        self.last = now  # when the last piece arrived (socket-timeout for a stalled upload)

    # -- the reader's side
    def put(self, data: bytes, now: float) -> None:
        self.pieces.append(data)
        self.size += len(data)
        self.last = now
        self._wake()
        if self.size > HIGH and not self.paused:
            self.paused = True
            self.on_pause()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def fail(self, why: str) -> None:
        if not self.ended:
            self.failed = why
            self.ended = True
            self._wake()

    # -- the app's side
    async def take(self) -> tuple[bytes, bool] | None:
        """(data, more) for an http.request message; None when the body cannot be completed."""
        while not self.pieces and not self.ended:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.failed and not self.pieces:
            return None
        pieces = self.pieces
        if len(pieces) == 1 or len(pieces[0]) >= CHUNK:
            data = pieces.popleft()
        else:
            out = []
            n = 0
            while pieces and n + len(pieces[0]) <= CHUNK:
                piece = pieces.popleft()
                out.append(piece)
                n += len(piece)
            data = b"".join(out)
        self.size -= len(data)
        if self.paused and self.size <= HIGH // 2:
            self.paused = False
            self.on_resume()
        more = bool(pieces) or not self.ended or bool(self.failed)
        return data, more

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
