"""The master's decisions, as pure functions: the table of children, what the master remembers and the
clock in; actions out (spawn, signal, stop, log). The master's loop (master/master.py) gathers the facts
(reaped deaths, the scoreboard, the listen queue, /proc) and carries the actions out; nothing here forks,
signals, sleeps or reads the clock, so every rule has a unit test without a process (tests/master/).

Rules: a dead worker is respawned (at once; after a growing delay when it keeps dying before it
accepts, a crash loop; after `forkbomb-delay` when more than `processes` died within a second); an app
that never loaded in any worker stops the instance (exit 22); recycling replaces one worker at a time;
a child asked to leave is killed after its mercy; harakiri from the master (master/harakiri.py) and
cheaper (master/cheaper.py) turn into the same actions. Mules and spoolers are buried by the same code.
"""

from __future__ import annotations

import signal
import socket
from dataclasses import dataclass, field

from uisge.master import harakiri
from uisge.master.cheaper import Decision

EXIT_APP = 22


@dataclass
class Child:
    """One row of the table: a worker, mule or spooler process."""

    wid: int  # the worker id; for a mule its id, for a spooler its index
    pid: int
    ctl: socket.socket | None
    generation: int
    spawned: float
    ready: bool = False
    leaving_since: float | None = None  # asked to stop (reload, stop, recycle, cheaper)
    kill_at: float | None = None  # SIGKILL after this (its mercy)
    successor_of: int | None = None  # the pid of the worker this one replaces (recycling)
    slot: int = -1  # its scoreboard slot
    kind: str = "worker"  # or "mule" / "spooler"
    harakiri_kill_at: float | None = None  # the master's harakiri asked for its stacks; SIGKILL after this


@dataclass(frozen=True)
class Facts:
    """What the master knows now, besides the table."""

    now: float
    generation: int = 1
    processes: int = 1
    stopping: bool = False
    ever_ready: bool = False
    forkbomb_delay: float = 2.0
    worker_mercy: float = 60.0
    mule_mercy: float = 30.0
    harakiri: float = 0.0


@dataclass
class Memory:
    """What the policy remembers between decisions."""

    respawn_at: dict[int, float] = field(default_factory=dict)  # worker id -> when to spawn it again
    aux_respawn_at: dict[tuple[str, int], float] = field(default_factory=dict)
    boot_failures: dict[int, int] = field(default_factory=dict)  # deaths before accepting, in a row
    recent_respawns: list[float] = field(default_factory=list)
    recycle_queue: list[int] = field(default_factory=list)  # pids waiting for a replacement
    recycling: int | None = None  # the pid being replaced now
    harakiri_count: dict[int, int] = field(default_factory=dict)
    cheap: set[int] = field(default_factory=set)  # worker ids cheaper has retired
    aux_reloading: set[int] = field(default_factory=set)  # mules/spoolers asked to leave to come back (touch)


# ---------------------------------------------------------------- actions
@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Spawn:
    wid: int
    successor_of: int | None = None
    respawn: bool = False  # say "Respawned" with the new pid


@dataclass(frozen=True)
class SpawnAux:
    kind: str
    number: int


@dataclass(frozen=True)
class Signal:
    pid: int
    signum: int


@dataclass(frozen=True)
class Stop:
    mode: str  # "graceful" or "brutal"
    why: str
    exit_code: int = 0


Action = Say | Spawn | SpawnAux | Signal | Stop


# ---------------------------------------------------------------- leaving
def leave(child: Child, graceful: bool, facts: Facts) -> list[Action]:
    """Ask a child to stop: SIGTERM (graceful: it finishes what it has) or SIGINT, and SIGKILL after its
    mercy (worker-reload-mercy / mule-reload-mercy; 3 s when brutal)."""
    if child.leaving_since is not None:
        return []
    child.leaving_since = facts.now
    mercy = (facts.worker_mercy if child.kind == "worker" else facts.mule_mercy) if graceful else 3
    child.kill_at = facts.now + mercy + 1
    return [Signal(child.pid, signal.SIGTERM if graceful else signal.SIGINT)]


def reload_aux(aux: dict[int, Child], kind: str, facts: Facts, memory: Memory) -> list[Action]:
    """touch-mules-reload / touch-spoolers-reload: each of that kind finishes what it does, then comes back."""
    out: list[Action] = []
    for child in aux.values():
        if child.kind == kind and child.leaving_since is None:
            memory.aux_reloading.add(child.pid)
            out += leave(child, True, facts)
    return out


# ---------------------------------------------------------------- recycling
def recycle(child: Child, children: dict[int, Child], facts: Facts, memory: Memory) -> list[Action]:
    """A worker asks for a replacement (max-requests, reload-on-rss, ...) or a chain reload replaces it:
    queued, one at a time; the old one leaves only once its replacement accepts."""
    if child.leaving_since is not None or child.pid in memory.recycle_queue or child.pid == memory.recycling:
        return []
    memory.recycle_queue.append(child.pid)
    return next_recycle(children, facts, memory)


def next_recycle(children: dict[int, Child], facts: Facts, memory: Memory) -> list[Action]:
    out: list[Action] = []
    while memory.recycling is None and memory.recycle_queue and not facts.stopping:
        old = children.get(memory.recycle_queue.pop(0))
        if old is not None and old.leaving_since is None:
            memory.recycling = old.pid
            out.append(Spawn(old.wid, successor_of=old.pid))
    return out


# ---------------------------------------------------------------- deaths
def how(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def buried(child: Child, code: int, children: dict[int, Child], facts: Facts, memory: Memory) -> list[Action]:
    """A reaped child (exit code, or -signal): what to say and whether, and when, it comes back."""
    now = facts.now
    out: list[Action] = []
    if child.kind == "worker":
        if child.pid == memory.recycling or (child.successor_of is not None
                                             and child.successor_of == memory.recycling and not child.ready):
            memory.recycling = None  # done (or its replacement failed: the old worker keeps serving)
            out += next_recycle(children, facts, memory)
        if child.pid in memory.recycle_queue:
            memory.recycle_queue.remove(child.pid)
        if child.harakiri_kill_at is not None and not facts.stopping:
            memory.respawn_at[child.wid] = now
            return out + [Say(f"worker {child.wid} (pid: {child.pid}) killed by harakiri; respawning it")]
        if child.successor_of is not None and not child.ready and child.leaving_since is None and not facts.stopping:
            return out + [Say(f"the replacement of worker {child.wid} (pid: {child.pid}) died before accepting; the "
                              f"worker it was to replace keeps serving")]
    if child.pid in memory.aux_reloading:
        memory.aux_reloading.discard(child.pid)
        if not facts.stopping:
            memory.aux_respawn_at[(child.kind, child.wid)] = now
            return out + [Say(f"{child.kind} {child.wid} (pid: {child.pid}) finished for the reload; respawning it")]
    if child.leaving_since is not None or facts.stopping:
        if child.kind == "worker":
            return out + [Say(f"worker {child.wid} buried after {now - (child.leaving_since or now):.0f} seconds "
                              f"(pid: {child.pid})")]
        return out + [Say(f"{child.kind} {child.wid} (pid: {child.pid}) stopped")]
    if child.kind != "worker":
        if child.kind == "spooler":
            out.append(Say(f"OOOPS the spooler is no more ({how(code)})...trying respawn..."))
        else:
            out.append(Say(f"OOOPS mule {child.wid} (pid: {child.pid}) crippled ({how(code)})...trying respawn..."))
        quick = now - child.spawned < 1.0
        memory.aux_respawn_at[(child.kind, child.wid)] = now + (1.0 if quick else 0.0)
        return out
    if child.generation != facts.generation:
        return out + [Say(f"old worker {child.wid} (pid: {child.pid}) died during the reload; its replacement "
                          f"serves")]
    out.append(Say(f"DAMN ! worker {child.wid} (pid: {child.pid}) died, {how(code)} :( trying respawn ..."))
    delay = 0.0
    if not child.ready:
        failures = memory.boot_failures.get(child.wid, 0) + 1
        memory.boot_failures[child.wid] = failures
        if code == EXIT_APP and not facts.ever_ready:
            return out + [Say("*** the app did not load in the worker (exit code 22) and no worker ever served: "
                              "stopping ***"), Stop("brutal", "the app does not load", EXIT_APP)]
        if failures >= 2:
            delay = min(30.0, 2.0 ** (failures - 2))
            out.append(Say(f"worker {child.wid} died before accepting {failures} times in a row: a crash loop. "
                           f"Next try in {delay:g} s; the traceback above says why"))
    memory.recent_respawns = [t for t in memory.recent_respawns if now - t < 1.0] + [now]
    if len(memory.recent_respawns) > facts.processes:
        delay = max(delay, facts.forkbomb_delay)
        out.append(Say(f"worker respawning too fast !!! i have to sleep a bit ({facts.forkbomb_delay:g} "
                       f"seconds)..."))
    memory.respawn_at[child.wid] = now + delay
    return out


def accepted(child: Child, memory: Memory) -> None:
    """A worker says it accepts: its run of boot failures ends."""
    child.ready = True
    memory.boot_failures.pop(child.wid, None)


# ---------------------------------------------------------------- the clock
def due(children: dict[int, Child], aux: dict[int, Child], facts: Facts, memory: Memory) -> list[Action]:
    """What the clock makes due: respawns whose delay passed, kills after mercy or harakiri's stack dump."""
    now = facts.now
    out: list[Action] = []
    if not facts.stopping:
        for key, at in list(memory.aux_respawn_at.items()):
            if now >= at:
                del memory.aux_respawn_at[key]
                out.append(SpawnAux(*key))
        for wid, at in list(memory.respawn_at.items()):
            if now >= at:
                del memory.respawn_at[wid]
                out.append(Spawn(wid, respawn=True))
    for child in [*children.values(), *aux.values()]:
        if child.kill_at is not None and now > child.kill_at:
            mercy = "worker-reload-mercy" if child.kind == "worker" else "mule-reload-mercy"
            seconds = facts.worker_mercy if child.kind == "worker" else facts.mule_mercy
            out.append(Say(f"{child.kind} {child.wid} (pid: {child.pid}) did not finish within {mercy} "
                           f"({seconds:g} s): killing it"))
            child.kill_at = None
            out.append(Signal(child.pid, signal.SIGKILL))
    for child in children.values():
        if child.harakiri_kill_at is not None and now >= child.harakiri_kill_at and child.leaving_since is None:
            child.leaving_since = now  # buried as a harakiri, not as a crash
            out.append(Signal(child.pid, signal.SIGKILL))
    return out


# ---------------------------------------------------------------- harakiri and cheaper
def on_harakiri(stuck: list[harakiri.Stuck], children: dict[int, Child], facts: Facts,
                memory: Memory) -> list[Action]:
    """Workers the scoreboard shows stuck past harakiri: log, ask for their stacks, kill them shortly after."""
    out: list[Action] = []
    for s in stuck:
        child = children.get(s.pid)
        if child is None or child.harakiri_kill_at is not None:
            continue
        memory.harakiri_count[child.wid] = memory.harakiri_count.get(child.wid, 0) + 1
        out.append(Say(f"*** HARAKIRI ON WORKER {child.wid} (pid: {child.pid}), from the master ***: {s.what} has "
                       f"run for {s.running:.1f} s (harakiri = {facts.harakiri:g} s) and the worker's own watchdog "
                       f"did not act: its app code holds the GIL. Every thread's stack follows (innermost call "
                       f"first); the worker is then killed and respawned:"))
        child.harakiri_kill_at = facts.now + harakiri.STACKS_WAIT
        out.append(Signal(child.pid, signal.SIGUSR2))  # faulthandler, registered by the worker, dumps the stacks
    return out


def on_cheaper(decision: Decision, current: dict[int, Child], facts: Facts, memory: Memory,
               minimum: int) -> list[Action]:
    """cheaper's decision (master/cheaper.py) as actions: spawn retired ids, retire idle workers gracefully.
    `current`: the serving worker of each id."""
    out: list[Action] = [Say(line) for line in decision.log]
    for wid in decision.spawn:
        if wid not in memory.cheap:
            continue
        memory.cheap.discard(wid)
        out.append(Say(f"cheaper: spawning worker {wid} ({facts.processes - len(memory.cheap)} of at most "
                       f"{facts.processes} workers)"))
        out.append(Spawn(wid))
    for wid in decision.cheap:
        child = current.get(wid)
        if child is None:
            continue
        memory.cheap.add(wid)
        out.append(Say(f"cheaper: worker {wid} (pid: {child.pid}) is idle; retiring it, it finishes what it has "
                       f"({facts.processes - len(memory.cheap)} workers left, cheaper = {minimum})"))
        out += leave(child, True, facts)
    return out


# ---------------------------------------------------------------- one decision per loop round
def decide(children: dict[int, Child], aux: dict[int, Child], facts: Facts, memory: Memory,
           stuck: list[harakiri.Stuck] = (), cheaper: Decision | None = None,
           serving: dict[int, Child] | None = None, minimum: int = 0) -> list[Action]:
    """Everything the clock and the gathered facts make due this round: respawns, mercy kills, harakiri
    (`stuck`: from the scoreboard) and cheaper's decision (`serving`: the worker of each id)."""
    out = due(children, aux, facts, memory)
    if stuck:
        out += on_harakiri(list(stuck), children, facts, memory)
    if cheaper is not None:
        out += on_cheaper(cheaper, serving or {}, facts, memory, minimum)
    return out


def evil(children: dict[int, Child], usage: dict[int, tuple[int, int]], rss_limit: int,
         as_limit: int) -> list[Action]:
    """evil-reload-on-rss/-as: a serving worker past a limit is killed at once (and respawned as a death).
    usage: pid -> (rss, address space) in bytes, read from /proc by the master."""
    out: list[Action] = []
    for child in children.values():
        if child.leaving_since is not None or child.pid not in usage:
            continue
        resident, size = usage[child.pid]
        if (rss_limit and resident >= rss_limit) or (as_limit and size >= as_limit):
            what = f"RSS: {resident}" if rss_limit and resident >= rss_limit else f"AS: {size}"
            out += [Say(f"*** EVIL RELOAD ON WORKER {child.wid} {what} (pid: {child.pid}) ***"),
                    Signal(child.pid, signal.SIGKILL)]
    return out


# ---------------------------------------------------------------- attached daemons
def daemon_died(cmd: str, pid: int, code: int, lived: float, throttle: float, max_throttle: float, control: bool,
                now: float) -> tuple[list[Action], float | None, float]:
    """An attached daemon (tasks/daemons.py) died: (actions, when to start it again or None, its new throttle).
    A control daemon stops the instance; one that lived over 5 s comes back at once; one that keeps dying
    sooner waits 1, 2, 4 ... up to `max_throttle` seconds."""
    out: list[Action] = [Say(f'[uwsgi-daemons] "{cmd}" (pid: {pid}) died ({how(code)}) after {lived:.0f} s')]
    if control:
        out += [Say(f'[uwsgi-daemons] "{cmd}" is a control daemon: stopping the instance'),
                Stop("graceful", "a control daemon died")]
        return out, None, throttle
    throttle = 0.0 if lived > 5 else min(max_throttle, max(1.0, throttle * 2))
    if throttle:
        out.append(Say(f'[uwsgi-daemons] throttling "{cmd}" for {throttle:g} seconds'))
    return out, now + throttle, throttle
