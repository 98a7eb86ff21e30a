"""uWSGI caches (`cache2 = name=NAME,items=N,blocksize=B,keysize=K`, legacy `cache = N`): a fixed
table of items in a shared memfd, so every worker, mule and spooler sees the same values.

Open addressing on crc32(key) with linear probing; expired items count as absent. Writers and
readers hold the cache's lock (a POSIX record lock on the memfd, plus a thread lock). The first cache
configured is the default one, as in uWSGI. Values bigger than `blocksize` are refused with a message.
Persistence (`store`) and LRU purging are not offered.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time
import zlib

from uisge.errors import UisgeError
from uisge.tasks.runtime import say

_HEAD = struct.Struct("<BxxxdHI")  # state, expires (unix time, 0 never), key length, value length
_SLOT_HEAD = 24
EMPTY, USED, GONE = 0, 1, 2


def parse_cache2(spec: str) -> dict:
    out = {"name": "", "items": 0, "blocksize": 65536, "keysize": 2048}
    for pair in spec.split(","):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key == "name":
            out["name"] = value.strip()
        elif key in ("items", "maxitems", "max_items", "blocksize", "keysize"):
            try:
                out["items" if key in ("maxitems", "max_items") else key] = int(value)
            except ValueError:
                raise UisgeError(f"`cache2 = {spec}`: {key} must be a number, got {value!r}") from None
        elif key in ("blocks", "bitmap", "hash", "hashsize"):
            continue  # uWSGI storage tuning; our table has one block per item
        else:
            raise UisgeError(f"`cache2 = {spec}`: {key!r} is not supported by uisge (supported: name, items, "
                             f"blocksize, keysize; `store`, `purge_lru` and cache sync are not offered)")
    if not out["name"] or out["items"] <= 0:
        raise UisgeError(f"`cache2 = {spec}`: name and items are required, e.g. `cache2 = name=mycache,items=100`")
    return out


class Cache:
    def __init__(self, name: str, items: int, blocksize: int = 65536, keysize: int = 2048, fd: int | None = None) -> None:
        self.name = name
        self.items = items
        self.blocksize = blocksize
        self.keysize = keysize
        self.slot = _SLOT_HEAD + keysize + blocksize
        size = self.slot * items
        self.fd = fd if fd is not None else os.memfd_create(f"uisge-cache-{name}", 0)
        if fd is None:
            os.ftruncate(self.fd, size)
        self.mem = mmap.mmap(self.fd, size)
        self.thread_lock = threading.Lock()
        self.pid = os.getpid()

    def spec(self) -> dict:
        return {"name": self.name, "items": self.items, "blocksize": self.blocksize, "keysize": self.keysize,
                "fd": self.fd}

    # -- locking
    def __enter__(self):
        if self.pid != os.getpid():
            self.thread_lock = threading.Lock()
            self.pid = os.getpid()
        self.thread_lock.acquire()
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, 0)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0)
        self.thread_lock.release()

    # -- the table
    def _find(self, key: bytes) -> tuple[int, int]:
        """(slot index holding key or -1, first free slot index or -1)."""
        start = zlib.crc32(key) % self.items
        free = -1
        now = time.time()
        for i in range(self.items):
            index = (start + i) % self.items
            off = index * self.slot
            state, expires, klen, vlen = _HEAD.unpack_from(self.mem, off)
            if state == EMPTY:
                return -1, free if free >= 0 else index
            if state == GONE or (expires and expires <= now):
                if state == USED:
                    self.mem[off] = GONE
                if free < 0:
                    free = index
                continue
            if klen == len(key) and self.mem[off + _SLOT_HEAD:off + _SLOT_HEAD + klen] == key:
                return index, free
        return -1, free

    def get(self, key: bytes) -> bytes | None:
        with self:
            index, _ = self._find(key)
            if index < 0:
                return None
            off = index * self.slot
            _, _, klen, vlen = _HEAD.unpack_from(self.mem, off)
            start = off + _SLOT_HEAD + self.keysize
            return bytes(self.mem[start:start + vlen])

    def put(self, key: bytes, value: bytes, expires: int, replace: bool) -> bool | None:
        if len(key) > self.keysize:
            say(f"[uwsgi-cache] key of {len(key)} bytes is bigger than keysize {self.keysize} of cache {self.name!r}")
            return None
        if len(value) > self.blocksize:
            say(f"*** cache item too big *** {len(value)} bytes > blocksize {self.blocksize} of cache {self.name!r} "
                f"(raise it: `cache2 = name={self.name},items={self.items},blocksize=N`)")
            return None
        with self:
            index, free = self._find(key)
            if index >= 0 and not replace:
                return None
            if index < 0:
                if free < 0:
                    say(f"[uwsgi-cache] cache {self.name!r} is full ({self.items} items)")
                    return None
                index = free
            off = index * self.slot
            when = time.time() + expires if expires else 0.0
            _HEAD.pack_into(self.mem, off, USED, when, len(key), len(value))
            self.mem[off + _SLOT_HEAD:off + _SLOT_HEAD + len(key)] = key
            start = off + _SLOT_HEAD + self.keysize
            self.mem[start:start + len(value)] = value
            return True

    def delete(self, key: bytes) -> bool | None:
        with self:
            index, _ = self._find(key)
            if index < 0:
                return None
            self.mem[index * self.slot] = GONE
            return True

    def clear(self) -> None:
        with self:
            for index in range(self.items):
                self.mem[index * self.slot] = EMPTY


def from_options(opts) -> dict[str, Cache]:
    caches: dict[str, Cache] = {}
    if opts.cache:
        caches["default"] = Cache("default", int(opts.cache))
    for spec in opts.cache2:
        conf = parse_cache2(spec)
        caches[conf["name"]] = Cache(conf["name"], conf["items"], conf["blocksize"], conf["keysize"])
        say(f"*** Cache \"{conf['name']}\" initialized: {conf['items']} items, {conf['blocksize']} bytes each ***")
    return caches


def from_state(specs: list[dict]) -> dict[str, Cache]:
    return {s["name"]: Cache(s["name"], s["items"], s["blocksize"], s["keysize"], fd=s["fd"]) for s in specs}
