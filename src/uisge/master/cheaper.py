"""cheaper: how many workers to run, decided once per master cycle (uWSGI's adaptive process spawning).

`processes` is the most; `cheaper` the fewest; `cheaper-initial` the count at start. Every cycle the
algorithm looks at the workers and says "spawn up to N", "cheap one" or nothing, with uWSGI 2.0's rules:
- spare (default): all running workers busy for more than `cheaper-overload` cycles in a row -> spawn
  `cheaper-step`; idle with more than one spare worker, every `cheaper-overload` cycles -> cheap one;
- backlog: listen queue above `cheaper-overload` -> spawn `cheaper-step`; below it -> cheap one;
- busyness: the share of each `cheaper-overload` period the workers spent in requests, against
  `cheaper-busyness-max`/`-min`, with a multiplier that grows when a cheaped worker is needed again soon,
  and emergency workers when the listen queue passes `cheaper-busyness-backlog-alert`;
- manual: nothing by itself (the master FIFO's `+` and `-` only).
`cheaper-rss-limit-soft` stops spawning while the running workers' RSS is above it; `-hard` cheaps one.
The worker cheaped is the idle one spawned longest ago; it finishes what it has and leaves.

Pure: the master hands in what it sees (scoreboard, /proc, the listen queue, its clock) and carries
out the decision; nothing here forks, signals or reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerView:
    """One worker id as the algorithm sees it. `running`: a live process that serves and is not leaving."""

    wid: int
    running: bool
    busy: bool = False
    running_time: float = 0.0  # seconds spent in requests since it was spawned (scoreboard)
    spawned: float = 0.0
    rss: int = 0


@dataclass(frozen=True)
class Settings:
    processes: int
    minimum: int  # `cheaper`
    initial: int
    step: int = 1
    overload: int = 3
    algo: str = "spare"
    rss_soft: int = 0
    rss_hard: int = 0
    busyness_max: int = 50
    busyness_min: int = 25
    busyness_multiplier: int = 10
    busyness_penalty: int = 2
    busyness_verbose: bool = False
    backlog_alert: int = 33
    backlog_multiplier: int = 3
    backlog_step: int = 1
    backlog_nonzero: int = 60

    @classmethod
    def from_options(cls, opts) -> Settings:
        processes = max(1, opts.processes)
        minimum = opts.cheaper
        return cls(processes=processes, minimum=minimum, initial=opts.cheaper_initial or minimum,
                   step=max(1, opts.cheaper_step or 1), overload=max(1, opts.cheaper_overload or 3),
                   algo=opts.cheaper_algo or "spare", rss_soft=opts.cheaper_rss_limit_soft or 0,
                   rss_hard=opts.cheaper_rss_limit_hard or 0, busyness_max=opts.cheaper_busyness_max,
                   busyness_min=opts.cheaper_busyness_min, busyness_multiplier=opts.cheaper_busyness_multiplier,
                   busyness_penalty=opts.cheaper_busyness_penalty, busyness_verbose=opts.cheaper_busyness_verbose,
                   backlog_alert=opts.cheaper_busyness_backlog_alert,
                   backlog_multiplier=opts.cheaper_busyness_backlog_multiplier,
                   backlog_step=opts.cheaper_busyness_backlog_step,
                   backlog_nonzero=opts.cheaper_busyness_backlog_nonzero)


ALGOS = ("spare", "backlog", "busyness", "manual")


def check(settings: Settings) -> str | None:
    """What is wrong with the settings, said for people (None: fine)."""
    s = settings
    if s.minimum < 1:
        return f"cheaper = {s.minimum}: at least one worker must run; use a value from 1 to processes - 1"
    if s.minimum >= s.processes:
        return (f"invalid cheaper value: must be lower than processes (cheaper = {s.minimum}, processes = "
                f"{s.processes}); raise processes to the most workers you want, cheaper is the fewest")
    if not s.minimum <= s.initial <= s.processes:
        return (f"cheaper-initial = {s.initial} must be between cheaper ({s.minimum}) and processes "
                f"({s.processes})")
    if s.algo not in ALGOS:
        return f"cheaper-algo = {s.algo!r} is not known; use one of: {', '.join(ALGOS)}"
    if s.rss_hard and s.rss_soft and s.rss_hard <= s.rss_soft:
        return "cheaper-rss-limit-hard must be higher than cheaper-rss-limit-soft"
    if s.busyness_min >= s.busyness_max:
        return (f"cheaper-busyness-min ({s.busyness_min}) must be lower than cheaper-busyness-max "
                f"({s.busyness_max})")
    return None


@dataclass
class Decision:
    spawn: list[int] = field(default_factory=list)  # worker ids to start
    cheap: list[int] = field(default_factory=list)  # worker ids to retire gracefully
    log: list[str] = field(default_factory=list)


class Cheaper:
    """The algorithm's memory between cycles; decide() is called once per master cycle (one second)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        # spare
        self.overload_count = 0
        self.idle_count = 0
        # busyness
        self.multiplier = settings.busyness_multiplier
        self.last_values: dict[int, float] = {}
        self.was_busy: dict[int, int] = {}
        self.tcheck = -1.0
        self.next_cheap = 0.0
        self.last_cheaped = 0.0
        self.last_action = 0  # 1: spawned, 2: cheaped
        self.tolerance = 0
        self.emergency = 0
        self.backlog_since: float | None = None

    # ---------------------------------------------------------------- the cycle
    def decide(self, workers: list[WorkerView], backlog: int, now: float, fifo_delta: int = 0) -> Decision:
        """workers: every id from 1 to processes; backlog: connections waiting in the listen queues."""
        s = self.s
        out = Decision()
        running = [w for w in workers if w.running]
        cheap = sorted(w.wid for w in workers if not w.running)
        wanted = 0
        can_spawn = True
        if s.rss_soft:
            total = sum(w.rss for w in running)
            if s.rss_hard and len(running) > 1 and total >= s.rss_hard:
                out.log.append(f"cheaper hard rss memory limit exceeded ({total >> 20} MB of "
                               f"cheaper-rss-limit-hard {s.rss_hard >> 20} MB), cheap one of {len(running)} workers")
                wanted = -1
                can_spawn = False
            elif total >= s.rss_soft:
                can_spawn = False
        if fifo_delta:
            wanted = wanted or fifo_delta
        elif not wanted:
            wanted = self._algorithm(running, backlog, now, can_spawn, out)
        if wanted > 0 and can_spawn:
            out.spawn = cheap[:wanted]
        elif wanted < 0:
            idle = sorted((w for w in running if not w.busy), key=lambda w: (w.spawned, w.wid))
            floor = s.minimum if not fifo_delta else 1
            room = max(0, len(running) - floor)
            out.cheap = [w.wid for w in idle[:min(-wanted, room)]]
        return out

    def _algorithm(self, running: list[WorkerView], backlog: int, now: float, can_spawn: bool,
                   out: Decision) -> int:
        if self.s.algo == "backlog":
            return self._backlog(running, backlog, can_spawn)
        if self.s.algo == "busyness":
            return self._busyness(running, backlog, now, can_spawn, out)
        if self.s.algo == "manual":
            return 0
        return self._spare(running, can_spawn)

    def _room(self, running: list[WorkerView], step: int) -> int:
        return min(step, self.s.processes - len(running))

    # ---------------------------------------------------------------- spare
    def _spare(self, running: list[WorkerView], can_spawn: bool) -> int:
        s = self.s
        if any(not w.busy for w in running):
            if self.overload_count > 0:
                self.overload_count -= 1
        else:
            self.overload_count += 1
            self.idle_count = 0
        if can_spawn and self.overload_count > s.overload:
            self.overload_count = 0
            return self._room(running, s.step)
        if self.overload_count == 0:
            busy = sum(1 for w in running if w.busy)
            if len(running) - busy == 1:
                return 0  # stable: exactly one spare worker
            self.idle_count += 1
            if len(running) > s.minimum and self.idle_count % s.overload == 0:
                return -1
        return 0

    # ---------------------------------------------------------------- backlog
    def _backlog(self, running: list[WorkerView], backlog: int, can_spawn: bool) -> int:
        s = self.s
        if can_spawn and backlog > s.overload:
            return self._room(running, s.step)
        if backlog < s.overload and len(running) > s.minimum:
            return -1
        return 0

    # ---------------------------------------------------------------- busyness
    def _set_next_cheap(self, now: float) -> None:
        s = self.s
        factor = s.backlog_multiplier if self.emergency > 0 else self.multiplier
        self.next_cheap = now + s.overload * factor

    def _decrease_multiplier(self, out: Decision) -> None:
        if self.multiplier > self.s.busyness_multiplier:
            self.multiplier -= 1
            out.log.append(f"[busyness] decreasing cheaper multiplier to {self.multiplier}")

    def _emergency(self, running: list[WorkerView], backlog: int, now: float, out: Decision) -> int:
        self.multiplier = self.s.busyness_multiplier
        self.last_action = 1
        n = self._room(running, self.s.backlog_step)
        self._set_next_cheap(now)
        if n > 0:
            self.emergency += n
            out.log.append(f"[busyness] {backlog} requests in listen queue, spawning {n} emergency worker(s) "
                           f"({self.emergency})!")
        else:
            out.log.append(f"[busyness] {backlog} requests in listen queue but we are already started maximum "
                           f"number of workers ({self.s.processes})")
        return n

    def _busyness(self, running: list[WorkerView], backlog: int, now: float, can_spawn: bool,
                  out: Decision) -> int:
        s = self.s
        period = float(s.overload)
        ids = {w.wid for w in running}
        for wid in list(self.was_busy):
            if wid not in ids:
                del self.was_busy[wid]
        for w in running:
            self.was_busy[w.wid] = self.was_busy.get(w.wid, 0) + int(w.busy)
        if self.tcheck < 0:
            self.tcheck = now
            for w in running:
                self.last_values[w.wid] = w.running_time
            self._set_next_cheap(now)
            return 0
        if now - self.tcheck >= period:
            self.tcheck = now
            total = 0
            for w in running:
                delta = w.running_time - self.last_values.get(w.wid, 0.0)
                percent = min(100, int(delta * 100 / period)) if delta > 0 else 0
                if delta <= 0 and self.was_busy.get(w.wid, 0) > 0:
                    percent = 100  # busy at every look, no request finished: requests longer than the period
                self.was_busy[w.wid] = 0
                total += percent
                self.last_values[w.wid] = w.running_time
            average = total // len(running) if running else 0
            if s.busyness_verbose:
                out.log.append(f"[busyness] {s.overload}s average busyness of {len(running)} worker(s) is at "
                               f"{average}%")
            if average > s.busyness_max:
                self.tolerance = 0
                n = self._room(running, s.step) if can_spawn else 0
                if n > 0:
                    self.last_action = 1
                    if self.last_cheaped and (now - self.last_cheaped) / period <= self.multiplier:
                        self.multiplier += s.busyness_penalty
                        out.log.append(f"[busyness] worker(s) respawned to fast, increasing cheaper multiplier to "
                                       f"{self.multiplier} (+{s.busyness_penalty})")
                    else:
                        self._decrease_multiplier(out)
                    self._set_next_cheap(now)
                    out.log.append(f"[busyness] {s.overload}s average busyness is at {average}%, will spawn {n} new "
                                   f"worker(s)")
                else:
                    out.log.append(f"[busyness] {s.overload}s average busyness is at {average}% but we already "
                                   f"started maximum number of workers available with current limits "
                                   f"({len(running)})")
                return n
            if can_spawn and backlog > s.backlog_alert and len(running) < s.processes:
                return self._emergency(running, backlog, now, out)
            if average < s.busyness_min:
                if len(running) == 1:
                    return 0
                self.tolerance = 0
                if len(running) > s.minimum and now >= self.next_cheap:
                    if self.last_action == 2:
                        self._decrease_multiplier(out)
                    self._set_next_cheap(now)
                    out.log.append(f"[busyness] {s.overload}s average busyness is at {average}%, cheap one of "
                                   f"{len(running)} running workers")
                    self.last_cheaped = now
                    self.last_action = 2
                    if self.emergency > 0:
                        self.emergency -= 1
                    return -1
                return 0
            if len(running) == 1:
                return 0
            if self.emergency > 0:
                self.emergency -= 1
            self.tolerance += 1
            if self.tolerance >= 3:
                self._set_next_cheap(now)  # several busy-enough cycles: idle time starts again
            else:
                self.next_cheap += period  # this cycle does not count as idle
            return 0
        if can_spawn and backlog > s.backlog_alert and len(running) < s.processes:
            return self._emergency(running, backlog, now, out)
        if backlog > 0:
            if self.backlog_since is None:
                self.backlog_since = now
            elif can_spawn and now - self.backlog_since >= s.backlog_nonzero:
                out.log.append(f"[busyness] backlog was non-zero for {now - self.backlog_since:.0f} second(s), "
                               f"spawning new worker(s)")
                self.backlog_since = now
                return self._emergency(running, backlog, now, out)
        else:
            self.backlog_since = None
        return 0
