"""A connection's output buffer: response bytes (and at most one file region for sendfile()) waiting for
the socket, written without ever blocking the caller unless it asks to wait (the WSGI write() callable).

flush() sends what the socket takes now and says whether everything went; the event loop waits for
writability (EPOLLOUT) when it did not. Whoever produces bytes checks `size` against HIGH_WATER before
producing more, which is the backpressure. It does not know HTTP or WSGI.
"""

from __future__ import annotations

import os
import select
import time

from uisge.errors import ClientGone

HIGH_WATER = 256 * 1024  # bytes buffered per connection before the producer (the app's iterable) waits
_IOV_MAX = 64
_SENDFILE_MAX = 1 << 20


class Output:
    """The output side of one connection (a raw, non-blocking socket descriptor)."""

    size = 0  # bytes in `parts`
    file_fd = -1
    file_offset = 0
    file_left = 0
    sent = 0  # bytes taken by the socket so far (progress, for the timeouts)

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.parts: list = []

    def push(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def send_now(self, data: bytes) -> None:
        """A whole response: written at once when nothing waits before it, the rest kept (ClientGone when
        the peer is gone). Streamed pieces use push(), so they leave in as few writes as possible."""
        if self.parts or self.file_left:
            self.push(data)
            return
        try:
            n = os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from None
        self.sent += n
        if n != len(data):
            self.push(memoryview(data)[n:])

    def send_now_parts(self, head: bytes, body: bytes) -> None:
        """send_now() for a head and a big body, without copying the body next to the head."""
        if self.parts or self.file_left:
            self.push(head)
            self.push(body)
            return
        self.parts += (head, body)
        self.size += len(head) + len(body)
        self.flush()

    def push_file(self, fd: int, offset: int, size: int) -> None:
        self.file_fd, self.file_offset, self.file_left = fd, offset, size

    @property
    def pending(self) -> bool:
        return bool(self.size or self.file_left)

    def flush(self) -> bool:
        """Send what the socket takes now; True when nothing is left. ClientGone when the peer is gone."""
        parts = self.parts
        fd = self.fd
        try:
            while parts:
                if len(parts) == 1:
                    n = os.write(fd, parts[0])
                else:
                    n = os.writev(fd, parts[:_IOV_MAX])
                self.sent += n
                self.size -= n
                while n:
                    first = parts[0]
                    if n >= len(first):
                        n -= len(first)
                        del parts[0]
                    else:
                        parts[0] = memoryview(first)[n:]
                        n = 0
            while self.file_left:
                n = os.sendfile(self.fd, self.file_fd, self.file_offset, min(self.file_left, _SENDFILE_MAX))
                if n == 0:  # the file is shorter than it was: nothing more to send
                    self.file_left = 0
                    break
                self.sent += n
                self.file_offset += n
                self.file_left -= n
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            raise ClientGone(str(exc)) from None
        return True

    def drain(self, timeout: float) -> None:
        """Block the calling thread until everything is sent; ClientGone after `timeout` s without progress.
        Only for the WSGI write() callable, which has no way to give control back."""
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        deadline = time.monotonic() + timeout
        while True:
            before = self.sent
            if self.flush():
                return
            if self.sent != before:
                deadline = time.monotonic() + timeout
            if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                raise ClientGone(f"the client read nothing for socket-timeout ({timeout:g} s)")
