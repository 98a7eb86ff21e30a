"""The master FIFO (`master-fifo = PATH`): a named pipe the master reads single-letter commands from
(`echo r > PATH` reloads), one byte per command as uWSGI does, with `\\n` ignored. Opened read-write,
so it never reads EOF when a writer leaves. Only reads; master.py acts on the letters.
"""

from __future__ import annotations

import os
import stat

from uisge.errors import UisgeError

# what each letter does (reference §4.6); the ones uisge has no such feature for say so in the log
COMMANDS = {
    "r": "graceful reload", "R": "brutal reload", "q": "graceful stop", "Q": "brutal stop",
    "w": "graceful reload of the workers", "W": "brutal reload of the workers", "c": "chain reload",
    "s": "stats to the log", "l": "reopen the log", "L": "rotate the log", "P": "rewrite the pidfile",
    "+": "one more worker (cheaper)", "-": "one fewer worker (cheaper)", "p": "pause/resume the workers",
}


class MasterFifo:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if os.path.exists(path):
                if not stat.S_ISFIFO(os.stat(path).st_mode):
                    raise UisgeError(f"master-fifo = {path}: it exists and is not a FIFO; remove it or choose "
                                     f"another path")
                os.unlink(path)
            os.mkfifo(path, 0o600)
            self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise UisgeError(f"master-fifo = {path}: cannot create it: {exc.strerror or exc}") from None

    def read(self) -> str:
        try:
            data = os.read(self.fd, 256)
        except (BlockingIOError, InterruptedError):
            return ""
        return "".join(ch for ch in data.decode("latin-1") if not ch.isspace())

    def close(self, remove: bool) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        if remove:
            try:
                os.unlink(self.path)
            except OSError:
                pass
