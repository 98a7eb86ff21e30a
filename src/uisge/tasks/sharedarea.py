"""uWSGI shared areas (`sharedarea = PAGES` or `sharedarea = size=BYTES` / `pages=N`): raw memory every
worker, mule and spooler of the instance reads and writes with `uwsgi.sharedarea_*(id, pos, ...)`, the
first configured area being id 0. A memfd (sparse: a big area costs only the pages written), with a
read/write lock (tasks/locks.py FdLock) taken around each access, as uWSGI's are.

Out-of-range positions and lengths raise ValueError("error calling ..."), as uWSGI's Python module does.
"""

from __future__ import annotations

import mmap
import os
import struct
from contextlib import contextmanager

from uisge.errors import UisgeError
from uisge.tasks.locks import FdLock

PAGE = 4096
_INTS = {8: struct.Struct("<b"), 16: struct.Struct("<h"), 32: struct.Struct("<i"), 64: struct.Struct("<q")}


def parse(spec: str) -> int:
    """The size in bytes of `sharedarea = 8` (pages) or `sharedarea = size=100000` / `pages=2`."""
    text = spec.strip()
    if text.isdigit():
        return int(text) * PAGE
    size = 0
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if key in ("size", "pages") and value.isdigit():
            size = int(value) * (PAGE if key == "pages" else 1)
        else:
            raise UisgeError(f"`sharedarea = {spec}`: give a number of pages, `size=BYTES` or `pages=N` (`file`, "
                             f"`fd` and `ptr` areas are not offered by uisge)")
    if size <= 0:
        raise UisgeError(f"`sharedarea = {spec}`: the size must be more than 0")
    return size


class SharedArea:
    def __init__(self, size: int, fd: int | None = None) -> None:
        self.size = size
        self.fd = fd if fd is not None else os.memfd_create("uisge-sharedarea", 0)
        if fd is None:
            os.ftruncate(self.fd, size)
        self.mem = mmap.mmap(self.fd, size)
        self.guard = FdLock(self.fd)

    def spec(self) -> dict:
        return {"size": self.size, "fd": self.fd}

    @contextmanager
    def _locked(self, exclusive: bool):
        self.guard.acquire(exclusive)
        try:
            yield
        finally:
            self.guard.release()

    def _check(self, what: str, pos: int, length: int) -> None:
        if pos < 0 or length < 0 or pos + length > self.size or pos >= self.size:
            raise ValueError(f"error calling uwsgi_sharedarea_{what}()")

    def read(self, pos: int, length: int = 0) -> bytes:
        if 0 <= pos < self.size and not length:
            length = self.size - pos
        self._check("read", pos, length)
        with self._locked(False):
            return bytes(self.mem[pos:pos + length])

    def write(self, pos: int, data: bytes) -> None:
        self._check("write", pos, len(data))
        with self._locked(True):
            self.mem[pos:pos + len(data)] = data

    def read_int(self, bits: int, pos: int) -> int:
        fmt = _INTS[bits]
        self._check(f"read{bits}", pos, fmt.size)
        with self._locked(False):
            return fmt.unpack_from(self.mem, pos)[0]

    def write_int(self, bits: int, pos: int, value: int) -> None:
        fmt = _INTS[bits]
        self._check(f"write{bits}", pos, fmt.size)
        with self._locked(True):
            fmt.pack_into(self.mem, pos, _wrap(value, bits))

    def add_int(self, bits: int, pos: int, delta: int) -> None:
        """inc/dec: read, add and write under one write lock (wrapping as the C integer does)."""
        fmt = _INTS[bits]
        self._check(f"inc{bits}", pos, fmt.size)
        with self._locked(True):
            fmt.pack_into(self.mem, pos, _wrap(fmt.unpack_from(self.mem, pos)[0] + delta, bits))

    def lock(self, exclusive: bool) -> None:
        """sharedarea_rlock / wlock: held until unlock(), across calls."""
        self.guard.acquire(exclusive)

    def unlock(self) -> None:
        self.guard.release()


def _wrap(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def from_options(opts) -> list[SharedArea]:
    return [SharedArea(parse(spec)) for spec in opts.sharedarea]


def from_state(specs: list[dict]) -> list[SharedArea]:
    return [SharedArea(s["size"], fd=s["fd"]) for s in specs]
