"""A worker's own health: the harakiri watchdog and the decision to be recycled.

harakiri: a watchdog thread sees every request's deadline; when one passes it logs the request and the
Python stack of the thread running it (taken before anything is killed), answers 504 if no response
head went out yet, tells the master, then the worker kills itself (after `harakiri-graceful-signal`
and `harakiri-graceful-timeout` if set) and the master respawns it. The watchdog needs the GIL; app code
that never releases it (a C loop) freezes the watchdog too, so each app thread also writes its deadline
into its scoreboard record, where the master sees it without the worker's help (master/harakiri.py), and
`faulthandler` answers the master's SIGUSR2 with every thread's stack, written from C without the GIL.

Recycling: after `max-requests` (+ a random 0..`max-requests-delta`, so workers do not all recycle at
once), `max-worker-lifetime`, `reload-on-rss`/`reload-on-as`, the worker asks the master for a
replacement and goes on serving until that one accepts. `py-autoreload` (worker 1 only) watches the
imported modules' files and asks the master for a reload. Only built when one of these options is set,
so a plain worker pays nothing for it.
"""

from __future__ import annotations

import faulthandler
import os
import random
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

from uisge.logfile import stamp
from uisge.wsgi.adapter import error_response

PAGE = os.sysconf("SC_PAGE_SIZE")


def memory() -> tuple[int, int]:
    """(address space, resident set) of this process, in bytes."""
    try:
        with open("/proc/self/statm") as fh:
            size, resident = fh.read().split()[:2]
        return int(size) * PAGE, int(resident) * PAGE
    except (OSError, ValueError):
        return 0, 0


def wanted(opts) -> bool:
    return bool(opts.harakiri or opts.max_requests or opts.max_worker_lifetime or opts.reload_on_rss
                or opts.reload_on_as or opts.py_autoreload or opts.memory_report)


LOOP: dict[str, Any] = {}  # the watchdog's entry for an ASGI worker's loop (Health.beat)
STACKS_SIGNAL = signal.SIGUSR2  # the master asks a stuck worker for its stacks (uWSGI: "what I am doing")


class Health:
    def __init__(self, opts, worker_id: int, tell_master: Callable[[bytes], None], board=None) -> None:
        self.opts = opts
        self.worker_id = worker_id
        self.tell_master = tell_master
        self.harakiri = float(opts.harakiri or 0)
        self.inflight: dict[int, tuple[float, dict[str, Any], Any]] = {}
        # the scoreboard slot (scoreboard.SlotWriter) and each app thread's record index in it
        self.board = board if self.harakiri else None
        self.cores: dict[int, int] = {}
        self.cores_lock = threading.Lock()
        self.max_cores = max(1, opts.threads)
        # a random jitter per worker (and per respawn), so workers started together do not recycle together
        self.max_requests = opts.max_requests + random.randint(0, opts.max_requests_delta) if opts.max_requests else 0
        lifetime = opts.max_worker_lifetime
        self.max_lifetime = lifetime + random.randint(0, opts.max_worker_lifetime_delta) if lifetime else 0
        self.min_lifetime = opts.min_worker_lifetime
        self.rss_limit = opts.reload_on_rss or 0
        self.as_limit = opts.reload_on_as or 0
        self.started = time.monotonic()
        self.due = False
        self.autoreload = opts.py_autoreload if worker_id == 1 else 0
        self.next_scan = 0.0
        self.mtimes: dict[str, float] = {}
        if opts.limit_as:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (opts.limit_as, opts.limit_as))

    def start(self) -> None:
        if self.harakiri:
            threading.Thread(target=self._watchdog, name="uisge-harakiri", daemon=True).start()
            faulthandler.register(STACKS_SIGNAL, file=sys.stderr, all_threads=True)
        if self.autoreload:
            self.mtimes = self._module_mtimes()

    # -- per request (called by the thread that runs the app)
    def begin(self, env: dict[str, Any], responder: Any) -> None:
        if self.harakiri:
            ident = threading.get_ident()
            self.inflight[ident] = (time.monotonic() + self.harakiri, env, responder)
            if self.board is not None:
                core = self.cores.get(ident)
                if core is None:
                    core = self._core(ident)
                what = f"{env.get('REQUEST_METHOD', '')} {env.get('REQUEST_URI') or env.get('PATH_INFO', '')}"
                self.board.app_begin(core, time.time() + self.harakiri, what.encode("utf-8", "replace"))

    def beat(self, current: Callable[[], tuple[dict[str, Any], Any] | None]) -> None:
        """An ASGI worker's loop is alive (once a second): its deadline moves on. A loop that does not come back
        within harakiri (+1 s) is blocked by synchronous code, which no cancellation can stop: the watchdog
        then logs the loop thread's stack and kills the worker. `current` names the request running then."""
        if self.harakiri:
            ident = threading.get_ident()
            self.inflight[ident] = (time.monotonic() + self.harakiri + 1, LOOP, current)
            if self.board is not None:
                core = self.cores.get(ident)
                if core is None:
                    core = self._core(ident)
                self.board.app_begin(core, time.time() + self.harakiri + 1, b"the worker's asyncio loop")

    def leave(self) -> None:
        """The calling thread stops running app code for its request (it may come back, with begin())."""
        if self.harakiri:
            ident = threading.get_ident()
            self.inflight.pop(ident, None)
            if self.board is not None:
                self.board.app_end(self.cores[ident])

    def _core(self, ident: int) -> int:
        """The scoreboard record of an app thread seen for the first time (the loop's, or a pool thread's)."""
        with self.cores_lock:
            if ident not in self.cores:
                self.cores[ident] = min(len(self.cores), self.max_cores - 1)  # inline: 0; a pool: 0..threads-1
            return self.cores[ident]

    def end(self, requests: int) -> None:
        """A request is finished (called by the event loop): the recycling checks."""
        if self.due:
            return
        if self.max_requests and requests >= self.max_requests:
            self._recycle(f"{requests} requests reached max-requests ({self.max_requests})")
        elif (self.rss_limit or self.as_limit) and requests % 16 == 0:
            self._check_memory()

    # -- once a second, from the event loop
    def tick(self, now: float) -> None:
        if self.due:
            return
        if self.max_lifetime and now - self.started >= self.max_lifetime:
            self._recycle(f"lived {now - self.started:.0f} s, max-worker-lifetime is {self.max_lifetime} s")
        elif self.rss_limit or self.as_limit:
            self._check_memory()
        if self.autoreload and now >= self.next_scan:
            self.next_scan = now + self.autoreload
            self._scan_modules()

    def _check_memory(self) -> None:
        size, rss = memory()
        if self.rss_limit and rss >= self.rss_limit:
            self._recycle(f"rss {rss // 1048576} MB reached reload-on-rss ({self.rss_limit // 1048576} MB)")
        elif self.as_limit and size >= self.as_limit:
            self._recycle(f"address space {size // 1048576} MB reached reload-on-as ({self.as_limit // 1048576} MB)")

    def _recycle(self, reason: str) -> None:
        if time.monotonic() - self.started < self.min_lifetime:
            return  # min-worker-lifetime: asked again after the next request or tick
        self.due = True
        self._say(f"...The work of process {os.getpid()} (worker {self.worker_id}) is done: {reason}. Seeya! "
                  f"(it serves until its replacement accepts)")
        self.tell_master(b"C")

    # -- py-autoreload
    def _module_mtimes(self) -> dict[str, float]:
        ignore = set(self.opts.py_auto_reload_ignore)
        out = {}
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if not path or name in ignore or not path.endswith(".py"):
                continue
            try:
                out[path] = os.stat(path).st_mtime
            except OSError:
                continue
        return out

    def _scan_modules(self) -> None:
        current = self._module_mtimes()
        changed = [p for p, m in current.items() if p in self.mtimes and self.mtimes[p] != m]
        self.mtimes = current
        if changed:
            self._say(f"py-autoreload: {changed[0]} changed" + (f" (and {len(changed) - 1} more)" if len(changed) > 1
                                                                 else "") + "; asking the master for a reload")
            self.tell_master(b"A")

    # -- harakiri
    def _watchdog(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            for tid, (deadline, env, responder) in list(self.inflight.items()):
                if now >= deadline:
                    self._harakiri(tid, env, responder, now - deadline + self.harakiri)
                    return

    def _harakiri(self, tid: int, env: dict[str, Any], responder: Any, running: float) -> None:
        frame = sys._current_frames().get(tid)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (no Python frame)\n"
        if env is LOOP:  # an ASGI worker's loop has not come back: the request running in it, if any
            found = responder()
            env, responder = found if found is not None else ({}, None)
            what = f"{env.get('REMOTE_ADDR', '')} {env.get('REQUEST_METHOD', '')} {env.get('REQUEST_URI', '')}"
            summary = (f"the asyncio loop has not run for {running + 1:.1f} s (harakiri = {self.harakiri:g} s), "
                       f"blocked by synchronous code in {what.strip() or 'no request'}")
        else:
            what = f"{env.get('REQUEST_METHOD', '')} {env.get('REQUEST_URI') or env.get('PATH_INFO', '')}"
            summary = (f"{env.get('REMOTE_ADDR', '')} {what} has run for {running:.1f} s "
                       f"(harakiri = {self.harakiri:g} s)")
        self._say(f"*** HARAKIRI ON WORKER {self.worker_id} (pid: {os.getpid()}) ***: {summary}. The thread running "
                  f"it is here:\n{stack}")
        self.tell_master(b"H")
        if responder is not None and not responder.head_sent:
            responder.head_sent = True
            protocol = responder.protocol if responder.protocol.startswith("HTTP/") else "HTTP/1.0"
            try:
                os.write(responder.fd, error_response(504, f"the request ran longer than harakiri "
                                                           f"({self.harakiri:g} s) and was stopped", protocol))
            except OSError:
                pass
        if self.opts.harakiri_graceful_timeout:
            os.kill(os.getpid(), self.opts.harakiri_graceful_signal)
            time.sleep(self.opts.harakiri_graceful_timeout)
        os.kill(os.getpid(), signal.SIGKILL)

    @staticmethod
    def _say(text: str) -> None:
        data = (stamp() + (text if text.endswith("\n") else text + "\n")).encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(2, data):]
        except OSError:
            pass
