"""uWSGI caches (`cache2 = name=NAME,items=N,blocksize=B,blocks=K,bitmap=1,purge_lru=1,keysize=S`, legacy
`cache = N`), in shared memory (a memfd), so every worker, mule and spooler sees the same values.

uWSGI 2.0's model (core/cache.c): item 0 is never used, so `items = N` holds N-1 keys. Without `bitmap`
each item owns one block of `blocksize` bytes; with `bitmap = 1` there are `blocks` blocks and a value
takes as many contiguous ones as it needs (found from where the last allocation ended, then from the
start), an update finds its new blocks before it frees the old ones. `purge_lru = 1` evicts the least
recently used item when the cache is full (a get counts as a use). Keys are found by open addressing on
crc32(key); expired items count as absent. Every operation holds the cache's lock (a POSIX record lock
on the memfd plus a thread lock). Persistence (`store`) and cache sync are not offered.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
import zlib

from uisge.errors import UisgeError
from uisge.tasks.locks import FdLock
from uisge.tasks.runtime import say

# the cache's own fields: next block to scan from, LRU head (least recent) and tail (0: none)
_META = struct.Struct("<QQQ")
# per item: state, expires (unix time, 0 never), key length, value length, first block, LRU prev, LRU next
_ITEM = struct.Struct("<BxxxdHxxxxxxQQQQ")
EMPTY, USED, GONE = 0, 1, 2
PREV, NEXT = 5, 6  # the LRU links' places in an item's fields
NIL = 0  # item 0 is never used: it is the list terminator


def parse_cache2(spec: str) -> dict:
    out = {"name": "", "items": 0, "blocksize": 65536, "keysize": 2048, "blocks": 0, "bitmap": False,
           "purge_lru": False}
    for pair in spec.split(","):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key == "name":
            out["name"] = value.strip()
        elif key in ("items", "maxitems", "max_items", "blocksize", "keysize", "blocks"):
            try:
                out["items" if key in ("maxitems", "max_items") else key] = int(value)
            except ValueError:
                raise UisgeError(f"`cache2 = {spec}`: {key} must be a number, got {value!r}") from None
        elif key in ("bitmap", "purge_lru"):
            out[key] = value.strip() not in ("0", "false", "no", "")
        elif key in ("hash", "hashsize"):
            continue  # uWSGI's hash function and table size: this table is its own hash
        else:
            raise UisgeError(f"`cache2 = {spec}`: {key!r} is not supported by uisge (supported: name, items, "
                             f"blocksize, blocks, bitmap, purge_lru, keysize; `store` and cache sync are not "
                             f"offered)")
    if not out["name"] or out["items"] <= 1:
        raise UisgeError(f"`cache2 = {spec}`: name and items (2 or more: item 0 is never used, as in uWSGI) are "
                         f"required, e.g. `cache2 = name=mycache,items=100`")
    return out


class Cache:
    def __init__(self, name: str, items: int, blocksize: int = 65536, keysize: int = 2048, fd: int | None = None,
                 blocks: int = 0, bitmap: bool = False, purge_lru: bool = False) -> None:
        self.name = name
        self.items = items
        self.blocksize = blocksize
        self.keysize = keysize
        self.bitmap = bool(bitmap)
        self.blocks = blocks if (bitmap and blocks) else items
        self.purge_lru = bool(purge_lru)
        self.max_value = self.blocks * blocksize if self.bitmap else blocksize
        self.item_size = _ITEM.size + keysize
        self.map_off = _META.size + self.item_size * items  # one byte per block: 1 used
        self.data_off = self.map_off + self.blocks
        size = self.data_off + self.blocks * blocksize
        self.fd = fd if fd is not None else os.memfd_create(f"uisge-cache-{name}", 0)
        if fd is None:
            os.ftruncate(self.fd, size)
        self.mem = mmap.mmap(self.fd, size)
        self.lock = FdLock(self.fd)

    def spec(self) -> dict:
        return {"name": self.name, "items": self.items, "blocksize": self.blocksize, "keysize": self.keysize,
                "blocks": self.blocks, "bitmap": self.bitmap, "purge_lru": self.purge_lru, "fd": self.fd}

    # -- items
    def _off(self, index: int) -> int:
        return _META.size + index * self.item_size

    def _item(self, index: int) -> list:
        return list(_ITEM.unpack_from(self.mem, self._off(index)))

    def _set_item(self, index: int, fields: list) -> None:
        _ITEM.pack_into(self.mem, self._off(index), *fields)

    def _set(self, index: int, field: int, value: int) -> None:
        fields = self._item(index)
        fields[field] = value
        self._set_item(index, fields)

    def _meta(self) -> tuple[int, int, int]:
        """(next block to scan from, LRU head, LRU tail)."""
        return _META.unpack_from(self.mem, 0)

    def _set_meta(self, pos: int, head: int, tail: int) -> None:
        _META.pack_into(self.mem, 0, pos, head, tail)

    def _find(self, key: bytes) -> tuple[int, int]:
        """(item holding key or 0, first free item or 0); items 1..N-1, probed from crc32(key)."""
        usable = self.items - 1
        start = zlib.crc32(key) % usable
        free = 0
        now = time.time()
        for i in range(usable):
            index = 1 + (start + i) % usable
            off = self._off(index)
            state, expires, klen = _ITEM.unpack_from(self.mem, off)[:3]
            if state == EMPTY:
                return 0, free or index
            if state == USED and expires and expires <= now:
                self._drop(index)
                state = GONE
            if state == GONE:
                free = free or index
                continue
            if klen == len(key) and self.mem[off + _ITEM.size:off + _ITEM.size + klen] == key:
                return index, free
        return 0, free

    def _drop(self, index: int) -> None:
        """Free an item: its blocks, its LRU place; the slot stays a tombstone for the probing."""
        fields = self._item(index)
        if self.bitmap:
            self._mark(fields[4], fields[3], 0)
        if self.purge_lru:
            self._lru_remove(index)
        fields[0] = GONE
        self._set_item(index, fields)

    # -- blocks (bitmap mode)
    def _need(self, size: int) -> int:
        return max(1, -(-size // self.blocksize))

    def _mark(self, first: int, size: int, used: int) -> None:
        need = self._need(size)
        self.mem[self.map_off + first:self.map_off + first + need] = bytes([used]) * need

    def _free_blocks(self, size: int) -> int:
        """First block of a free run long enough for `size` bytes, from where the last allocation ended,
        then from the start; -1 when there is none."""
        need = self._need(size)
        bitmap = self.mem[self.map_off:self.map_off + self.blocks]
        pos = self._meta()[0]
        for start, end in ((pos, self.blocks), (0, self.blocks)):
            run = 0
            for block in range(start, end):
                run = 0 if bitmap[block] else run + 1
                if run == need:
                    return block - need + 1
        return -1

    def _allocate(self, size: int) -> int:
        first = self._free_blocks(size)
        if first >= 0:
            self._mark(first, size, 1)
            after = first + self._need(size)
            _, head, tail = self._meta()
            self._set_meta(after if after < self.blocks else 0, head, tail)
        return first

    # -- least recently used (purge_lru)
    def _lru_remove(self, index: int) -> None:
        pos, head, tail = self._meta()
        fields = self._item(index)
        prev, nxt = fields[PREV], fields[NEXT]
        if prev:
            self._set(prev, NEXT, nxt)
        else:
            head = nxt
        if nxt:
            self._set(nxt, PREV, prev)
        else:
            tail = prev
        fields[PREV] = fields[NEXT] = NIL
        self._set_item(index, fields)
        self._set_meta(pos, head, tail)

    def _lru_append(self, index: int) -> None:
        pos, head, tail = self._meta()
        fields = self._item(index)
        fields[PREV], fields[NEXT] = tail, NIL
        self._set_item(index, fields)
        if tail:
            self._set(tail, NEXT, index)
        else:
            head = index
        self._set_meta(pos, head, index)

    def _used(self, index: int) -> None:
        if self.purge_lru:
            self._lru_remove(index)
            self._lru_append(index)

    # -- operations (uWSGI's return values: the value / True, or None)
    def get(self, key: bytes) -> bytes | None:
        with self.lock:
            index, _ = self._find(key)
            if not index:
                return None
            _, _, _, vlen, first, _, _ = self._item(index)
            self._used(index)
            start = self.data_off + first * self.blocksize
            return bytes(self.mem[start:start + vlen])

    def put(self, key: bytes, value: bytes, expires: int, replace: bool) -> bool | None:
        if not key or not value or len(key) > self.keysize:
            if len(key) > self.keysize:
                say(f"[uwsgi-cache] key of {len(key)} bytes is bigger than keysize {self.keysize} of cache "
                    f"{self.name!r}")
            return None
        if len(value) > self.max_value:
            say(f"*** cache item too big *** {len(value)} bytes > {self.max_value} of cache {self.name!r}")
            return None
        with self.lock:
            index, free = self._find(key)
            when = time.time() + expires if expires else 0.0
            if index:
                if not replace:
                    return None
                fields = self._item(index)
                first = fields[4]
                if self.bitmap:
                    first = self._allocate(len(value))  # the new blocks first, the old ones still held
                    if first < 0:
                        self._full()
                        return None
                    self._mark(fields[4], fields[3], 0)
                fields[1], fields[3], fields[4] = when, len(value), first
                self._set_item(index, fields)
                self._used(index)
            else:
                if not free and self.purge_lru:
                    self._full()
                    index, free = self._find(key)
                if not free:
                    self._full()
                    return None
                index = free
                first = index
                if self.bitmap:
                    first = self._allocate(len(value))
                    if first < 0:
                        self._full()
                        return None
                self._set_item(index, [USED, when, len(key), len(value), first, NIL, NIL])
                off = self._off(index) + _ITEM.size
                self.mem[off:off + len(key)] = key
                if self.purge_lru:
                    self._lru_append(index)
            start = self.data_off + first * self.blocksize
            self.mem[start:start + len(value)] = value
            return True

    def _full(self) -> None:
        """uWSGI's cache_full(): with purge_lru the least recently used item goes, otherwise it is said."""
        head = self._meta()[1]
        if self.purge_lru and head:
            self._drop(head)
        elif not self.purge_lru:
            say(f'*** DANGER cache "{self.name}" is FULL !!! ***')

    def delete(self, key: bytes) -> bool | None:
        with self.lock:
            index, _ = self._find(key)
            if not index:
                return None
            self._drop(index)
            return True

    def clear(self) -> None:
        with self.lock:
            self.mem[0:self.data_off] = bytes(self.data_off)


def from_options(opts) -> dict[str, Cache]:
    caches: dict[str, Cache] = {}
    if opts.cache:
        caches["default"] = Cache("default", int(opts.cache))
    for spec in opts.cache2:
        conf = parse_cache2(spec)
        caches[conf["name"]] = Cache(conf["name"], conf["items"], conf["blocksize"], conf["keysize"],
                                     blocks=conf["blocks"], bitmap=conf["bitmap"], purge_lru=conf["purge_lru"])
        say(f"*** Cache \"{conf['name']}\" initialized: {conf['items'] - 1} items, "
            f"{conf['blocks'] if conf['bitmap'] and conf['blocks'] else conf['items']} blocks of "
            f"{conf['blocksize']} bytes ***")
    return caches


def from_state(specs: list[dict]) -> dict[str, Cache]:
    return {s["name"]: Cache(s["name"], s["items"], s["blocksize"], s["keysize"], fd=s["fd"],
                             blocks=s.get("blocks", 0), bitmap=s.get("bitmap", False),
                             purge_lru=s.get("purge_lru", False)) for s in specs}
