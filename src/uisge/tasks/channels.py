"""Message channels between the master, workers, mules and spoolers: unix datagram socketpairs made
by the master before it forks anything, so every process inherits both ends.

A datagram is one message (a uWSGI signal, a mule message, a spooler wake-up), read whole by exactly
one reader even when several processes wait on the same channel: that is how "any worker" and "any
mule" are served. Sends never block: a full channel drops the message and says so. The fds survive
the master's re-exec (`state()` / `from_state()`). This module must not interpret messages.
"""

from __future__ import annotations

import os
import socket

MAX_MESSAGE = 65536 + 16


class Channel:
    def __init__(self, name: str, reader: socket.socket, writer: socket.socket) -> None:
        self.name = name
        self.reader = reader
        self.writer = writer

    @classmethod
    def new(cls, name: str) -> "Channel":
        reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for sock in (reader, writer):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        reader.setblocking(False)
        return cls(name, reader, writer)

    def send(self, message: bytes) -> bool:
        """Queue one message; False (and nothing sent) when the channel is full or gone."""
        try:
            self.writer.send(message, socket.MSG_DONTWAIT)
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return False

    def receive(self) -> bytes | None:
        """One message if one waits, else None (never blocks)."""
        try:
            return self.reader.recv(MAX_MESSAGE)
        except (BlockingIOError, InterruptedError):
            return None

    def fileno(self) -> int:
        return self.reader.fileno()


class Channels(dict):
    """name -> Channel: `master` (requests to the master), `workers` (any worker), `mule0` (any mule),
    `muleN`, `farm:NAME`, `spooler:DIR`."""

    def add(self, name: str) -> Channel:
        if name not in self:
            self[name] = Channel.new(name)
        return self[name]

    def state(self) -> dict[str, list[int]]:
        out = {}
        for name, channel in self.items():
            for sock in (channel.reader, channel.writer):
                os.set_inheritable(sock.fileno(), True)
            out[name] = [channel.reader.fileno(), channel.writer.fileno()]
        return out

    @classmethod
    def from_state(cls, state: dict[str, list[int]]) -> "Channels":
        out = cls()
        for name, (r, w) in state.items():
            reader, writer = socket.socket(fileno=r), socket.socket(fileno=w)
            reader.setblocking(False)
            out[name] = Channel(name, reader, writer)
        return out
