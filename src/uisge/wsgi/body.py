"""A request body as it arrives, in bounded memory: up to `post-buffering` bytes in RAM, the rest in an
anonymous temporary file written as the bytes come (so a 1 GiB upload costs a few KiB of RAM), then
handed to the app as `wsgi.input`. No sockets here: the connection writes what it read.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any


class BodySink:
    __slots__ = ("parts", "size", "limit", "file", "tmpdir")

    def __init__(self, limit: int, tmpdir: str | None = None) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit  # bytes kept in RAM before the body goes to a file
        self.file: Any = None
        self.tmpdir = tmpdir

    def write(self, data: bytes) -> None:
        if self.file is None:
            if self.size + len(data) <= self.limit:
                self.parts.append(data)
                self.size += len(data)
                return
            self.file = tempfile.TemporaryFile(dir=self.tmpdir)
            for part in self.parts:
                self.file.write(part)
            self.parts = []
        self.file.write(data)
        self.size += len(data)

    def input(self) -> Any:
        """The body as a readable file object positioned at its start."""
        if self.file is not None:
            self.file.flush()
            self.file.seek(0)
            return self.file
        parts = self.parts
        return io.BytesIO(parts[0] if len(parts) == 1 else b"".join(parts))

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.parts = []
