"""The spooler (reference §7.4): tasks are files in a directory, run one at a time by spooler processes.

A task file is a uwsgi packet (modifier1 17, the var block, then the optional body) written to a
hidden temporary name, fsync()ed and renamed into place, so `spool()` returns only once the task is
on disk whole and a crash never leaves half a task. A spooler process takes a task under flock(),
so two spoolers (or an old and a new one during a reload) never run the same task at once; the lock
dies with the process, so a task that was running when the server was killed runs again after the
restart (the only task that can run twice). `SPOOL_OK` (-2) deletes the task; `SPOOL_RETRY` (-1),
an exception or any other value keeps it for the next scan; `at` (the file's mtime) delays it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import select
import signal
import socket
import threading
import time
import traceback
from typing import Any, Callable

from uisge.protocol.uwsgi import encode_vars
from uisge.tasks.runtime import say

SPOOL_OK, SPOOL_RETRY, SPOOL_IGNORE = -2, -1, 0
MODIFIER = 17
PREFIX = "uwsgi_spoolfile_on_"
_counter = [0]


def _as_str(value: Any, key: str) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value.encode("utf-8").decode("latin-1")  # stored as UTF-8 bytes
    if isinstance(value, (int, float)):
        return str(value)
    raise ValueError(f"spool(): the value of {key!r} is a {type(value).__name__}; spooler arguments must be str or "
                     f"bytes (pickle other objects, or use @spool(pass_arguments=True))")


def encode_task(args: dict) -> tuple[bytes, str | None, float | None, str | None]:
    """A task as a uwsgi packet (modifier1 17, the var block, the body), with its priority, its `at` time and
    the `spooler` it names. `spooler`, `priority`, `at` and `body` are special."""
    args = dict(args)
    body = args.pop("body", b"") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    target = args.pop("spooler", None)
    if target:
        target = target.decode() if isinstance(target, bytes) else str(target)
    priority = args.pop("priority", None)
    at = args.get("at")
    env = {}
    for key, value in args.items():
        env[key.decode("latin-1") if isinstance(key, bytes) else str(key)] = _as_str(value, key)
    if priority is not None:
        priority = _as_str(priority, "priority")
        env["priority"] = priority
    block = encode_vars(env)
    if len(block) > 65535:
        raise ValueError("[uwsgi-spooler] args buffer is limited to 64k, use the 'body' for bigger values")
    data = bytes([MODIFIER]) + len(block).to_bytes(2, "little") + b"\0" + block + body
    when = float(at.decode() if isinstance(at, bytes) else at) if at is not None else None
    return data, priority, when, target


def write_task(directory: str, args: dict, quiet: bool = False) -> str:
    """Write one task atomically; returns its path."""
    data, priority, at, target = encode_task(args)
    if target:
        directory = target
    if priority is not None:
        directory = os.path.join(directory, priority)
        os.makedirs(directory, exist_ok=True)
    _counter[0] += 1
    now = time.time()
    name = (f"{PREFIX}{socket.gethostname()}_{os.getpid()}_{_counter[0]}_{random.randrange(1 << 30)}_"
            f"{int(now)}_{int(now % 1 * 1e6)}")
    final = os.path.join(directory, name)
    temp = os.path.join(directory, "." + name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if at is not None:
        os.utime(temp, (at, at))
    os.rename(temp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if not quiet:
        say(f"[spooler] written {len(data)} bytes to file {final}")
    return final


def read_task(data: bytes, path: str) -> dict[bytes, bytes]:
    """The dict the spooler function receives: bytes keys and values, as uWSGI gives on Python 3."""
    if len(data) < 4 or data[0] != MODIFIER:
        raise ValueError(f"{path} is not a spooler task (it does not start with a modifier1 17 uwsgi header)")
    size = int.from_bytes(data[1:3], "little")
    block, body = data[4:4 + size], data[4 + size:]
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(block):
        klen = int.from_bytes(block[pos:pos + 2], "little")
        key = block[pos + 2:pos + 2 + klen]
        pos += 2 + klen
        vlen = int.from_bytes(block[pos:pos + 2], "little")
        out[key] = block[pos + 2:pos + 2 + vlen]
        pos += 2 + vlen
    if body:
        out[b"body"] = body
    out[b"spooler_task_name"] = path.encode()
    return out


def pending(directory: str) -> list[str]:
    """Task files in run order: priority subdirectories first (by name), then the oldest task first."""
    out: list[tuple[str, float, str]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith(PREFIX):
            try:
                out.append(("~", entry.stat().st_mtime, entry.path))
            except OSError:
                pass
        elif entry.is_dir() and entry.name.isdigit():
            for sub in os.scandir(entry.path):
                if sub.name.startswith(PREFIX):
                    try:
                        out.append((entry.name, sub.stat().st_mtime, sub.path))
                    except OSError:
                        pass
    out.sort(key=lambda t: (t[0], t[1], t[2]))
    return [p for _, _, p in out]


class Spooler:
    """One spooler process on one directory; `run()` never returns (the process exits)."""

    def __init__(self, opts, directory: str, wake, control: socket.socket, handle_message: Callable,
                 function: Callable[[], Callable | None]) -> None:
        self.opts = opts
        self.directory = directory
        self.wake = wake  # the spooler's channel: wake-ups and uWSGI signals
        self.control = control
        self.handle_message = handle_message
        self.function = function  # returns uwsgi.spooler at call time (the app may set it late)
        self.frequency = max(1, int(opts.spooler_frequency or 30))
        self.done = 0
        self.running = True
        self.busy = False
        self.quiet = bool(opts.spooler_quiet)
        self.said_unreachable = -60.0

    def run(self) -> int:
        def leave(signum, frame):
            self.running = False
            if not self.busy:  # idle (waiting in select): leave now; in a task: leave after it
                raise SystemExit(0)

        signal.signal(signal.SIGTERM, leave)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, leave)
        for module in self.opts.spooler_import:  # a module, or a .py file (uWSGI's tests/spooler_dir.py)
            if module.endswith(".py"):
                import runpy

                runpy.run_path(module, run_name=os.path.splitext(os.path.basename(module))[0])
            else:
                __import__(module)
        while self.running:
            did = self.scan_queue() if self.opts.tasks_backend else self.scan()
            if not self.running:
                break
            if self.opts.spooler_max_tasks and self.done >= self.opts.spooler_max_tasks:
                say(f"[spooler {self.directory} pid: {os.getpid()}] maximum number of tasks reached "
                    f"({self.opts.spooler_max_tasks}): recycling the spooler")
                return 0
            if did:
                continue
            # the group's queue is polled twice a second (a task spooled by another instance sends no wake-up)
            self.wait(min(self.frequency, 0.5) if self.opts.tasks_backend else self.frequency)
        return 0

    def wait(self, timeout: float) -> None:
        fds = [self.wake.reader, self.control]
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return
        if self.control in readable:
            try:
                if not self.control.recv(64):
                    say(f"[spooler {self.directory} pid: {os.getpid()}] the master is gone; leaving")
                    self.running = False
            except OSError:
                self.running = False
        while self.wake.reader in readable:
            message = self.wake.receive()
            if message is None:
                break
            self.handle_message(message)

    def scan(self) -> bool:
        """Run every task that is due; True when at least one ran."""
        ran = False
        now = time.time()
        for path in pending(self.directory):
            if not self.running:
                break
            while (message := self.wake.receive()) is not None:  # signals between tasks
                self.handle_message(message)
            if self.run_task(path, now):
                ran = True
                if self.opts.spooler_max_tasks and self.done >= self.opts.spooler_max_tasks:
                    break
        return ran

    def run_task(self, path: str, now: float) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False  # done by another spooler meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False  # another spooler runs it
                raise
            st = os.fstat(fd)
            if st.st_nlink == 0:
                return False  # finished and removed while we waited for the lock
            if st.st_mtime > now + 0.5:
                return False  # `at`: not yet
            data = b""
            while chunk := os.read(fd, 1 << 20):
                data += chunk
            try:
                task = read_task(data, path)
            except ValueError as exc:
                say(f"[spooler] {exc}; moved aside to {path}.invalid")
                os.rename(path, path + ".invalid")
                return False
            self.busy = True  # a stop signal now waits for the task and its bookkeeping
            try:
                return self._execute(path, task)
            finally:
                self.busy = False
        finally:
            os.close(fd)

    def _execute(self, path: str, task: dict) -> bool:
        """Run a task file; True when it ran (and is gone)."""
        result = self._call(os.path.basename(path), task)
        if result is None:
            return False
        if result == SPOOL_OK:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return True
        return False

    def _call(self, name: str, task: dict) -> int | None:
        """The spooler function on one task: its result (SPOOL_RETRY for an exception), None when the app
        has no spooler function yet."""
        tag = f"[spooler {self.directory} pid: {os.getpid()}]"
        function = self.function()
        if function is None:
            say(f"{tag} no spooler function: the app must set `uwsgi.spooler` or use uwsgidecorators' @spool; "
                f"{name} stays queued")
            return None
        if not self.quiet:
            say(f"{tag} managing request {name} ...")
        started = time.monotonic()
        if self.opts.spooler_harakiri:
            signal.signal(signal.SIGALRM, lambda s, f: _harakiri(tag, name, self.opts.spooler_harakiri))
            signal.alarm(int(self.opts.spooler_harakiri))
        try:
            result = function(task)
        except Exception:  # noqa: BLE001 - a failing task is retried, never the end of the spooler
            say(f"{tag} task {name} raised; it stays queued and is retried at the next scan "
                f"(every {self.frequency} s):\n{traceback.format_exc().rstrip()}")
            result = SPOOL_RETRY
        finally:
            if self.opts.spooler_harakiri:
                signal.alarm(0)
        self.done += 1
        if result == SPOOL_OK:
            if not self.quiet:
                say(f"{tag} done with task {name} after {int(time.monotonic() - started)} seconds")
        elif result == SPOOL_IGNORE:
            say(f"{tag} task {name}: the spooler function returned SPOOL_IGNORE; it stays queued")
        elif result != SPOOL_RETRY:
            say(f"{tag} task {name}: the spooler function returned {result!r} (not SPOOL_OK); it stays queued and "
                f"is retried")
        return result

    # ---------------------------------------------------------------- tasks-backend: the group's queue
    def scan_queue(self) -> bool:
        """Run the group's tasks from Redis (tasks/queue.py) while there are some; True when one ran."""
        import redis

        from uisge.tasks.queue import VISIBILITY, describe, queue_for

        queue = queue_for(self.opts.tasks_backend)
        ran = False
        while self.running:
            while (message := self.wake.receive()) is not None:  # signals between tasks
                self.handle_message(message)
            try:
                got = queue.take()
            except redis.RedisError as exc:
                self._unreachable(exc)
                return ran
            if got is None:
                return ran
            task_id, packet = got
            name = describe(task_id)
            try:
                task = read_task(packet, name)
            except ValueError as exc:
                say(f"[spooler] {exc}; dropped")
                queue.done(task_id)
                continue
            alive = threading.Event()
            beat = threading.Thread(target=_heartbeat, args=(queue, task_id, alive, VISIBILITY / 3), daemon=True)
            self.busy = True  # a stop signal now waits for the task and its bookkeeping
            beat.start()
            try:
                result = self._call(name, task)
            finally:
                alive.set()
                beat.join(2)
                self.busy = False
            try:
                if result == SPOOL_OK:
                    queue.done(task_id)
                else:
                    queue.retry(task_id, self.frequency)  # (its deadline would bring it back anyway)
            except redis.RedisError as exc:
                self._unreachable(exc)
                return True
            if result is None:
                return ran
            ran = True
            if self.opts.spooler_max_tasks and self.done >= self.opts.spooler_max_tasks:
                break
        return ran

    def _unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self.said_unreachable >= 60:
            self.said_unreachable = now
            say(f"[spooler pid: {os.getpid()}] tasks-backend unreachable ({exc}); the queue waits for it (said once "
                f"a minute)")


def _heartbeat(queue: Any, task_id: str, stop: threading.Event, every: float) -> None:
    """While a task runs, its deadline in the queue moves on; a spooler that dies stops moving it."""
    while not stop.wait(every):
        try:
            queue.extend(task_id)
        except Exception:  # noqa: BLE001 - Redis gone: the task may run again elsewhere (at-least-once)
            pass


def _harakiri(tag: str, name: str, secs: int) -> None:
    say(f"{tag} *** HARAKIRI ON THE SPOOLER TASK {name} (more than {secs} s): killing the spooler; "
        f"the task stays queued ***")
    os._exit(1)
