"""A request body as it arrives, in bounded memory: up to `post-buffering` bytes in RAM, the rest in an
unlinked temporary file written as the bytes come (so a 1 GiB upload costs a few KiB of RAM), then
handed to the app as `wsgi.input`. No sockets here: the connection writes what it read.

Spill files are kept for the next large body (a few per process) instead of being created and
unlinked each time: the file system work of a new file and of freeing its pages costs more than the
copy itself. A kept file is cut to the body's length before the app reads it, so nothing of an
earlier body is ever readable, and one that grew past a limit is emptied before it is kept.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any

_SPARE: list = []  # spill files to reuse; used only from the event loop's thread
_SPARE_MAX = 4
_KEEP_MAX = 64 << 20  # a file that held more is emptied before it is kept


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
            self.file = _SPARE.pop() if _SPARE else tempfile.TemporaryFile(dir=self.tmpdir)
            self.file.seek(0)
            for part in self.parts:
                self.file.write(part)
            self.parts = []
        self.file.write(data)
        self.size += len(data)

    def input(self) -> Any:
        """The body as a readable file object positioned at its start."""
        file = self.file
        if file is not None:
            file.truncate(self.size)  # a reused file: what lies past this body is gone
            file.seek(0)
            return file
        parts = self.parts
        return io.BytesIO(parts[0] if len(parts) == 1 else b"".join(parts))

    def discard(self) -> None:
        file = self.file
        self.file = None
        self.parts = []
        if file is None:
            return
        if file.closed:  # the app closed wsgi.input: nothing to keep
            return
        if len(_SPARE) >= _SPARE_MAX:
            file.close()
            return
        if self.size > _KEEP_MAX:
            file.truncate(0)
        _SPARE.append(file)
