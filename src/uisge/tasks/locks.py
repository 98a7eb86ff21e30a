"""uWSGI user locks (`locks = N`, `uwsgi.lock(n)` / `unlock(n)` / `is_locked(n)`): held across every
process of the instance. Each lock is one byte of a memfd locked with POSIX record locks (which
belong to the process, so a forked child never inherits a held lock and a dead holder releases it),
plus a thread lock so that threads of one worker exclude each other too.

Not reentrant, as in uWSGI. The memfd is made by the master and passed through its re-exec.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

from uisge.tasks.group import RELEASE


class Locks:
    def __init__(self, count: int, fd: int | None = None) -> None:
        self.count = max(1, count)
        self.fd = fd if fd is not None else os.memfd_create("uisge-locks", 0)
        os.ftruncate(self.fd, self.count)
        self.threads = [threading.Lock() for _ in range(self.count)]
        self.owner_pid = os.getpid()

    def _check(self, n: int) -> None:
        if not isinstance(n, int) or not 0 <= n < self.count:
            raise ValueError(f"uwsgi lock {n!r} does not exist: locks are 0..{self.count - 1} (set `locks = N` for "
                             f"more)")

    def _after_fork(self) -> None:
        if self.owner_pid != os.getpid():  # thread locks copied mid-hold by fork() would never be released
            self.threads = [threading.Lock() for _ in range(self.count)]
            self.owner_pid = os.getpid()

    def lock(self, n: int = 0) -> None:
        self._check(n)
        self._after_fork()
        self.threads[n].acquire()
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, n)
        except BaseException:
            self.threads[n].release()
            raise

    def unlock(self, n: int = 0) -> None:
        self._check(n)
        self._after_fork()
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, n)
        if self.threads[n].locked():
            self.threads[n].release()

    def is_locked(self, n: int = 0) -> bool:
        self._check(n)
        self._after_fork()
        if self.threads[n].locked():
            return True
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, n)
        except OSError:
            return True
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, n)
        return False


class FdLock:
    """One process-wide lock on a shared memfd (byte 0, a POSIX record lock) plus a thread lock, so that
    processes and the threads of one process exclude each other; remade in a forked child, which never
    inherits a held one. Reentrant in its holder (sharedarea_wlock, then sharedarea_write): the record lock
    is taken by the outermost acquire and dropped by the outermost release. Used by caches and shared areas."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.thread_lock = threading.RLock()
        self.depth = 0  # nested acquires by the holding thread
        self.pid = os.getpid()

    def acquire(self, exclusive: bool = True) -> None:
        if self.pid != os.getpid():
            self.thread_lock = threading.RLock()
            self.depth = 0
            self.pid = os.getpid()
        self.thread_lock.acquire()
        if self.depth == 0:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, 1, 0)
            except BaseException:
                self.thread_lock.release()
                raise
        self.depth += 1

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 0)
        self.thread_lock.release()

    def __enter__(self) -> "FdLock":
        self.acquire(True)
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class GroupLocks(Locks):
    """`tasks-backend-locks`: the same locks, held across every instance of the tasks-backend group. The local
    lock is taken first (the instance's processes and threads queue there), then a Redis key with this
    holder's token (SET NX with a TTL), polled with a growing pause; unlock deletes the key only if it still
    holds that token. A holder that dies without unlocking holds the lock for at most `ttl` seconds."""

    def __init__(self, count: int, url: str, ttl: float = 60.0, fd: int | None = None) -> None:
        super().__init__(count, fd)
        self.url = url
        self.ttl_ms = int(ttl * 1000)
        self.tokens: dict[int, str] = {}
        self.client: Any = None
        self.client_pid = 0

    def _redis(self) -> Any:
        if self.client_pid != os.getpid():  # one client per process, made after the fork
            import redis

            self.client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self.client_pid = os.getpid()
        return self.client

    def lock(self, n: int = 0) -> None:
        super().lock(n)
        import uuid

        import redis

        token = f"{os.getpid()}:{uuid.uuid4().hex}"
        pause = 0.005
        try:
            while not self._redis().set(f"uisge:lock:{n}", token, nx=True, px=self.ttl_ms):
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        except redis.RedisError as exc:
            super().unlock(n)
            raise RuntimeError(f"uwsgi.lock({n}) is group-wide (tasks-backend-locks), and the tasks-backend is "
                               f"unreachable: {exc}") from None
        except BaseException:
            super().unlock(n)
            raise
        self.tokens[n] = token

    def unlock(self, n: int = 0) -> None:
        token = self.tokens.pop(n, None)
        try:
            if token is not None:
                self._redis().eval(RELEASE, 1, f"uisge:lock:{n}", token)
        finally:
            super().unlock(n)

    def is_locked(self, n: int = 0) -> bool:
        if super().is_locked(n):
            return True
        return bool(self._redis().exists(f"uisge:lock:{n}"))
