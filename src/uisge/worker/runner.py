"""Where app code runs: the one place that knows about threads.

A runner takes a connection whose request is ready and runs its step (call the app, pull the body,
write what the socket takes) somewhere:
- Inline (`threads = 1`): right here, in the event loop's thread; the result comes back at once.
- ThreadPool (`threads > 1`): in one of N app threads; results come back through a queue and a wake-up
  pipe that the event loop watches.
A third runner (an asyncio loop for ASGI apps) fits the same two methods. Nothing here reads or
writes a client socket or knows a protocol.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable


def drain_pipe(fd: int) -> None:
    """Read a non-blocking wake-up pipe empty (what was written only meant "look")."""
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


class Inline:
    wake_fd = -1
    busy = 0  # steps handed out and not yet collected (inline: none ever waits)
    size = 1

    def __init__(self, step: Callable[[Any], int]) -> None:
        self.step = step

    def submit(self, conn: Any) -> int | None:
        """Run the step now; its result (connection.DONE, WAIT or GONE)."""
        return self.step(conn)

    def collect(self) -> list:
        return []

    def stop(self) -> None:
        pass


class ThreadPool:
    def __init__(self, step: Callable[[Any], int], threads: int) -> None:
        self.step = step
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)
        self.threads = [threading.Thread(target=self._run, name=f"uisge-app-{i + 1}", daemon=True)
                        for i in range(threads)]
        self.size = threads
        self.busy = 0  # steps handed to the threads and not yet collected (only the loop's thread counts)
        for thread in self.threads:
            thread.start()

    def submit(self, conn: Any) -> int | None:
        """Hand the step to an app thread; None: the result comes later, through collect()."""
        self.busy += 1
        self.jobs.put(conn)
        return None

    def _run(self) -> None:
        while True:
            conn = self.jobs.get()
            if conn is None:
                return
            self.results.put((conn, self.step(conn)))
            try:
                os.write(self._wake_w, b"r")
            except BlockingIOError:
                pass  # the pipe is full: the loop is woken already

    def collect(self) -> list:
        """The (connection, result) pairs finished since the last call (called when wake_fd is readable)."""
        drain_pipe(self.wake_fd)
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                self.busy -= len(out)
                return out

    def stop(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)


def make_runner(threads: int, step: Callable[[Any], int]):
    return ThreadPool(step, threads) if threads > 1 else Inline(step)
