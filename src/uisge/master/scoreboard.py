"""The scoreboard: shared memory with one slot per worker process. The worker writes its own slot
(counters, whether it is in a request and since when, a latency histogram); the master reads every slot
for the stats server and metrics without asking the workers anything.

Each slot ends with one record per app thread ("core"): the harakiri deadline of the request whose app
code that thread runs, and the request's method and URI. The thread writes its own record when it enters
and leaves app code, so the master can see a request stuck past harakiri even when the worker cannot run
any Python at all (its watchdog thread included).

One writer per slot (per core record for those) and plain loads on the reader side: a reader may see a half-updated slot for one
refresh, never a crash. It lives in a memfd, so a re-exec'd master maps the same board its adopted
workers still write to. Only built when `stats` or `metrics` is set, or the app uses the `uwsgi` module
(`uwsgi.workers()` reads it) or loads lazily: a plain worker pays nothing.
"""

from __future__ import annotations

import mmap
import os
import struct
import time

# pid, requests, exceptions, tx bytes, in_request, running time (s), avg_rt (s), current start, spawned
HEAD = struct.Struct("<QQQQQdddd")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds; +Inf is implied
HIST = struct.Struct(f"<{len(BUCKETS) + 1}Q")
WID = struct.Struct("<Q")  # the worker id holding the slot, written once by its writer
WID_OFF = HEAD.size + HIST.size
WS = struct.Struct("<QQ")  # websockets open now, websockets accepted so far (ASGI workers)
WS_OFF = WID_OFF + WID.size
SLOT_BASE = 256  # the counters above; the core records follow
assert WS_OFF + WS.size <= SLOT_BASE
CORE = struct.Struct("<d120s")  # harakiri deadline (wall clock, 0: not in app code), "METHOD URI"


class Board:
    def __init__(self, slots: int, fd: int | None = None, cores: int = 1) -> None:
        self.slots = slots
        self.cores = max(1, cores)
        self.slot_size = SLOT_BASE + self.cores * CORE.size
        if fd is not None and os.fstat(fd).st_size != slots * self.slot_size:
            # a reload changed processes or threads: the old layout cannot be read (nor grown under the old
            # workers' writes); the old workers finish on their board, the new ones get this one
            os.close(fd)
            fd = None
        if fd is None:
            fd = os.memfd_create("uisge-scoreboard", 0)
            os.ftruncate(fd, slots * self.slot_size)
        self.fd = fd
        self.mem = mmap.mmap(fd, slots * self.slot_size)

    # -- the worker's side
    def writer(self, slot: int, wid: int = 0) -> "SlotWriter":
        writer = SlotWriter(self.mem, slot * self.slot_size, self.slot_size)
        WID.pack_into(self.mem, slot * self.slot_size + WID_OFF, wid)
        return writer

    # -- the master's side
    def stuck(self, slot: int, now: float) -> list[tuple[float, str]]:
        """(deadline, "METHOD URI") of each request of this slot whose app code is past its harakiri deadline."""
        out = []
        off = slot * self.slot_size + SLOT_BASE
        for core in range(self.cores):
            deadline, what = CORE.unpack_from(self.mem, off + core * CORE.size)
            if 0 < deadline <= now:
                out.append((deadline, what.rstrip(b"\0").decode("utf-8", "replace")))
        return out

    def read(self, slot: int) -> dict:
        off = slot * self.slot_size
        pid, requests, exceptions, tx, in_request, running, avg_rt, current, spawned = HEAD.unpack_from(self.mem, off)
        hist = HIST.unpack_from(self.mem, off + HEAD.size)
        ws_open, ws_total = WS.unpack_from(self.mem, off + WS_OFF)
        return {"wid": WID.unpack_from(self.mem, off + WID_OFF)[0], "pid": pid, "requests": requests,
                "exceptions": exceptions, "tx": tx, "in_request": in_request, "running_time": running,
                "avg_rt": avg_rt, "current_start": current, "spawned": spawned, "histogram": hist,
                "websockets": ws_open, "websockets_total": ws_total}

    def clear(self, slot: int) -> None:
        self.mem[slot * self.slot_size:(slot + 1) * self.slot_size] = bytes(self.slot_size)


class SlotWriter:
    __slots__ = ("mem", "off", "hist_off", "cores_off", "requests", "exceptions", "tx", "in_request", "running",
                 "avg_rt", "spawned", "pid", "hist", "ws_open", "ws_total")

    def __init__(self, mem: mmap.mmap, off: int, size: int = SLOT_BASE) -> None:
        self.mem = mem
        self.off = off
        self.hist_off = off + HEAD.size
        self.cores_off = off + SLOT_BASE
        self.requests = self.exceptions = self.tx = self.in_request = 0
        self.running = self.avg_rt = 0.0
        self.spawned = time.time()
        self.pid = os.getpid()
        self.hist = [0] * (len(BUCKETS) + 1)
        self.ws_open = self.ws_total = 0
        mem[off:off + size] = bytes(size)
        self._write(0.0)

    def _write(self, current: float) -> None:
        HEAD.pack_into(self.mem, self.off, self.pid, self.requests, self.exceptions, self.tx, self.in_request,
                       self.running, self.avg_rt, current, self.spawned)

    def begin(self) -> None:
        self.in_request += 1
        self._write(time.time())

    def end(self, duration: float, tx: int, failed: bool) -> None:
        self.requests += 1
        self.in_request -= 1
        self.tx += tx
        self.running += duration
        self.avg_rt = (self.avg_rt + duration) / 2 if self.avg_rt else duration  # uWSGI's running average
        if failed:
            self.exceptions += 1
        i = 0
        for bound in BUCKETS:
            if duration <= bound:
                break
            i += 1
        self.hist[i] += 1
        self._write(0.0)
        struct.pack_into("<Q", self.mem, self.hist_off + 8 * i, self.hist[i])

    def websocket(self, opened: bool) -> None:
        """A websocket was accepted (True) or closed (False)."""
        if opened:
            self.ws_open += 1
            self.ws_total += 1
        else:
            self.ws_open -= 1
        WS.pack_into(self.mem, self.off + WS_OFF, self.ws_open, self.ws_total)

    # -- harakiri (written by the thread that runs the app code, for its own core record)
    def app_begin(self, core: int, deadline: float, what: bytes) -> None:
        CORE.pack_into(self.mem, self.cores_off + core * CORE.size, deadline, what[:120])

    def app_end(self, core: int) -> None:
        CORE.pack_into(self.mem, self.cores_off + core * CORE.size, 0.0, b"")
