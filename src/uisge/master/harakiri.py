"""harakiri from the master: which workers are stuck past their deadline, decided from the scoreboard.

The worker's own watchdog (worker/health.py) fires first, at the deadline. It is a Python thread, so app
code that holds the GIL (a C loop, a catastrophic regex) freezes it too; the master is the backstop. Each
app thread writes its request's deadline into its scoreboard record; when one is more than `grace` past,
the master asks the worker for its stacks (SIGUSR2: faulthandler writes them from C) and kills it.

Pure decisions only: no signals, no clock, no scoreboard access here (master/master.py does those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

STACKS_WAIT = 0.5  # seconds between asking for the stacks and SIGKILL: faulthandler writes them at once


@dataclass(frozen=True)
class Stuck:
    pid: int
    wid: int
    what: str  # "METHOD URI" of the stuck request
    running: float  # seconds its app code has run


def grace(harakiri_graceful_timeout: float) -> float:
    """How long past the deadline the master waits: the watchdog's own cycle (0.1 s) and its graceful
    signal's timeout, plus a margin, so a worker that can still act always acts first."""
    return 1.0 + max(0.0, harakiri_graceful_timeout)


def stuck_workers(records: Iterable[tuple[int, int, list[tuple[float, str]]]], now: float, harakiri: float,
                  margin: float) -> list[Stuck]:
    """records: (pid, wid, [(deadline, what), ...]) of each worker still serving (not leaving, not already
    being killed), deadlines in wall-clock seconds. A worker is stuck when one of its requests is more
    than `margin` seconds past its deadline; the oldest such request names it."""
    out = []
    for pid, wid, overdue in records:
        late = [(deadline, what) for deadline, what in overdue if deadline > 0 and now - deadline >= margin]
        if late:
            deadline, what = min(late)
            out.append(Stuck(pid, wid, what, now - deadline + harakiri))
    return out
