"""harakiri for ASGI requests: a request whose coroutine runs past `harakiri` seconds is cancelled (its await
chain goes to the log first), and its client gets a 504 (or a cut response if the head went out). The worker
lives on: its other requests are not touched. A loop blocked by synchronous code cannot cancel anything;
that case is the harakiri watchdog's (worker/health.py, fed by the loop's heartbeat): it kills the worker.

Pure bookkeeping and formatting; the runner (asgi/runner.py) cancels and answers.
"""

from __future__ import annotations

import linecache
from typing import Any


class Deadlines:
    """The running HTTP requests' deadlines, checked once a second."""

    __slots__ = ("seconds", "due")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.due: dict[Any, tuple[float, Any]] = {}  # task -> (deadline, conn)

    def add(self, task: Any, conn: Any, now: float) -> None:
        self.due[task] = (now + self.seconds, conn)

    def drop(self, task: Any) -> None:
        self.due.pop(task, None)

    def expired(self, now: float) -> list[tuple[Any, Any, float]]:
        """(task, conn, seconds it ran) of each request past its deadline; they are dropped from the watch."""
        out = [(task, conn, now - deadline + self.seconds) for task, (deadline, conn) in self.due.items()
               if now >= deadline]
        for task, _, _ in out:
            del self.due[task]
        return out


def await_chain(coro: Any) -> list:
    """The frames of a suspended coroutine and of everything it awaits, outermost first (a task's own
    get_stack() gives only the outermost one)."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = (getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
                or getattr(coro, "ag_await", None))
    return frames


def format_chain(frames: list) -> str:
    if not frames:
        return "  (no coroutine frame)\n"
    lines = []
    for frame in frames:
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n')
        source = linecache.getline(code.co_filename, frame.f_lineno).strip()
        if source:
            lines.append(f"    {source}\n")
    return "".join(lines)
