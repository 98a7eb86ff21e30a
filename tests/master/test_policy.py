"""The master's rules, decided without a process (master/policy.py): respawn, crash-loop backoff, an app
that never loads, fork-bomb delay, one-at-a-time recycling, mercy kills, harakiri, cheaper, and mules and
spoolers buried by the same code."""

import signal

from uisge.master import policy
from uisge.master.cheaper import Decision
from uisge.master.harakiri import Stuck
from uisge.master.policy import Child, Facts, Memory, Say, Signal, Spawn, SpawnAux, Stop


def child(wid=1, pid=100, **kw) -> Child:
    return Child(wid, pid, None, kw.pop("generation", 1), kw.pop("spawned", 0.0), **kw)


def said(actions) -> str:
    return "\n".join(a.text for a in actions if isinstance(a, Say))


def test_a_worker_that_served_is_respawned_at_once():
    memory = Memory()
    dead = child(ready=True)
    actions = policy.buried(dead, -9, {}, Facts(now=10.0, processes=2, ever_ready=True), memory)
    assert "DAMN ! worker 1 (pid: 100) died, killed by signal 9" in said(actions)
    assert memory.respawn_at == {1: 10.0}
    assert policy.due({}, {}, Facts(now=10.0), memory) == [Spawn(1, respawn=True)]
    assert memory.respawn_at == {}


def test_crash_loop_backs_off_and_an_app_that_never_loaded_stops_the_instance():
    memory = Memory()
    facts = Facts(now=0.0, processes=4, ever_ready=True)
    policy.buried(child(), 1, {}, facts, memory)
    assert memory.respawn_at[1] == 0.0  # first failure: at once
    actions = policy.buried(child(), 1, {}, Facts(now=5.0, processes=4, ever_ready=True), memory)
    assert memory.respawn_at[1] == 5.0 + 1.0 and "a crash loop" in said(actions)
    policy.buried(child(), 1, {}, Facts(now=9.0, processes=4, ever_ready=True), memory)
    assert memory.respawn_at[1] == 9.0 + 2.0  # doubling, up to 30 s
    never = policy.buried(child(), 22, {}, Facts(now=0.0, ever_ready=False), Memory())
    assert Stop("brutal", "the app does not load", 22) in never
    policy.accepted(child(), memory)
    assert 1 not in memory.boot_failures


def test_fork_bomb_delay_when_more_than_processes_die_within_a_second():
    memory = Memory()
    for pid in (1, 2, 3):
        actions = policy.buried(child(wid=pid, pid=pid, ready=True), -11, {},
                                Facts(now=1.0 + pid / 10, processes=2, forkbomb_delay=2), memory)
    assert "respawning too fast" in said(actions) and memory.respawn_at[3] == 1.3 + 2


def test_recycling_replaces_one_worker_at_a_time():
    memory = Memory()
    facts = Facts(now=0.0)
    a, b = child(1, 10, ready=True), child(2, 20, ready=True)
    children = {10: a, 20: b}
    assert policy.recycle(a, children, facts, memory) == [Spawn(1, successor_of=10)]
    assert policy.recycle(b, children, facts, memory) == []  # queued behind the first
    assert policy.recycle(b, children, facts, memory) == []  # asked twice: still once
    assert memory.recycle_queue == [20]
    a.leaving_since = 1.0  # its replacement accepted, so it was asked to leave; now it is reaped
    actions = policy.buried(a, 0, children, Facts(now=2.0), memory)
    assert actions[0] == Spawn(2, successor_of=20) and "worker 1 buried after 1 seconds" in said(actions)
    assert memory.respawn_at == {}  # a leaving worker is not respawned


def test_a_replacement_that_dies_before_accepting_leaves_the_old_worker_serving():
    memory = Memory(recycling=10)
    new = child(1, 11, successor_of=10)
    actions = policy.buried(new, 1, {10: child(1, 10, ready=True)}, Facts(now=1.0), memory)
    assert "keeps serving" in said(actions) and memory.recycling is None and memory.respawn_at == {}


def test_mercy_kills_after_leave_and_brutal_leave_is_shorter():
    worker, mule = child(1, 10, ready=True), child(1, 50, kind="mule")
    facts = Facts(now=0.0, worker_mercy=60, mule_mercy=30)
    assert policy.leave(worker, True, facts) == [Signal(10, signal.SIGTERM)]
    assert policy.leave(worker, True, facts) == []  # once
    assert policy.leave(mule, True, facts) == [Signal(50, signal.SIGTERM)]
    assert policy.due({10: worker}, {50: mule}, Facts(now=30.5, worker_mercy=60, mule_mercy=30), Memory()) == []
    actions = policy.due({10: worker}, {50: mule}, Facts(now=31.5, worker_mercy=60, mule_mercy=30), Memory())
    assert Signal(50, signal.SIGKILL) in actions and Signal(10, signal.SIGKILL) not in actions
    assert "mule 1 (pid: 50) did not finish within mule-reload-mercy (30 s)" in said(actions)
    actions = policy.due({10: worker}, {50: mule}, Facts(now=61.5, worker_mercy=60, mule_mercy=30), Memory())
    assert actions[-1] == Signal(10, signal.SIGKILL)  # each is killed once
    assert "did not finish within worker-reload-mercy (60 s)" in said(actions)
    brutal = child(2, 20)
    policy.leave(brutal, False, Facts(now=0.0))
    assert brutal.kill_at == 4.0


def test_mules_and_spoolers_are_buried_by_the_same_code():
    memory = Memory()
    actions = policy.buried(child(1, 50, kind="mule", spawned=0.0), -9, {}, Facts(now=0.5), memory)
    assert "OOOPS mule 1 (pid: 50) crippled (killed by signal 9)" in said(actions)
    assert memory.aux_respawn_at == {("mule", 1): 1.5}  # died within a second of its start: wait 1 s
    policy.buried(child(0, 60, kind="spooler", spawned=0.0), 1, {}, Facts(now=5.0), memory)
    assert memory.aux_respawn_at[("spooler", 0)] == 5.0
    assert policy.due({}, {}, Facts(now=1.5), memory) == [SpawnAux("mule", 1)]
    assert policy.due({}, {}, Facts(now=5.0), memory) == [SpawnAux("spooler", 0)]
    stopped = policy.buried(child(2, 70, kind="mule"), 0, {}, Facts(now=1.0, stopping=True), memory)
    assert said(stopped) == "mule 2 (pid: 70) stopped" and ("mule", 2) not in memory.aux_respawn_at


def test_nothing_is_respawned_while_stopping():
    memory = Memory(respawn_at={1: 0.0}, aux_respawn_at={("mule", 1): 0.0})
    assert policy.due({}, {}, Facts(now=5.0, stopping=True), memory) == []


def test_harakiri_asks_for_stacks_then_kills_then_respawns():
    memory = Memory()
    stuck_worker = child(1, 10, ready=True)
    children = {10: stuck_worker}
    facts = Facts(now=100.0, harakiri=2)
    actions = policy.on_harakiri([Stuck(10, 1, "GET /x", 3.5)], children, facts, memory)
    assert Signal(10, signal.SIGUSR2) in actions and "GET /x has run for 3.5 s" in said(actions)
    assert policy.on_harakiri([Stuck(10, 1, "GET /x", 3.6)], children, facts, memory) == []  # once
    assert policy.due(children, {}, Facts(now=100.2), memory) == []
    assert policy.due(children, {}, Facts(now=100.5), memory) == [Signal(10, signal.SIGKILL)]
    actions = policy.buried(stuck_worker, -9, children, Facts(now=100.6), memory)
    assert "killed by harakiri; respawning it" in said(actions) and memory.respawn_at == {1: 100.6}
    assert memory.harakiri_count == {1: 1}


def test_cheaper_decisions_become_spawns_and_graceful_retirements():
    memory = Memory(cheap={3, 4})
    serving = {1: child(1, 10, ready=True), 2: child(2, 20, ready=True)}
    facts = Facts(now=0.0, processes=4)
    actions = policy.decide(serving and {10: serving[1], 20: serving[2]}, {}, facts, memory,
                            cheaper=Decision(spawn=[3], cheap=[]), serving=serving, minimum=1)
    assert Spawn(3) in actions and memory.cheap == {4}
    actions = policy.on_cheaper(Decision(cheap=[2]), serving, facts, memory, 1)
    assert Signal(20, signal.SIGTERM) in actions and memory.cheap == {2, 4}
    assert "is idle; retiring it" in said(actions)


def test_evil_reload_kills_a_serving_worker_past_its_memory_limit():
    fat, thin, leaving = child(1, 10, ready=True), child(2, 20, ready=True), child(3, 30, leaving_since=1.0)
    children = {10: fat, 20: thin, 30: leaving}
    usage = {10: (600, 900), 20: (100, 900), 30: (999, 999)}
    actions = policy.evil(children, usage, rss_limit=500, as_limit=0)
    assert actions == [Say("*** EVIL RELOAD ON WORKER 1 RSS: 600 (pid: 10) ***"), Signal(10, signal.SIGKILL)]
    assert policy.evil(children, usage, rss_limit=0, as_limit=950) == []
    assert Signal(10, signal.SIGKILL) in policy.evil(children, usage, rss_limit=0, as_limit=900)


def test_attached_daemons_come_back_with_a_growing_throttle_and_a_control_daemon_stops_all():
    actions, at, throttle = policy.daemon_died("sleep 1", 7, 1, lived=0.5, throttle=0.0, max_throttle=30,
                                               control=False, now=10.0)
    assert (at, throttle) == (11.0, 1.0) and "throttling" in said(actions)
    _, at, throttle = policy.daemon_died("sleep 1", 8, 1, lived=0.5, throttle=16.0, max_throttle=30, control=False,
                                         now=20.0)
    assert (at, throttle) == (50.0, 30.0)  # doubled, capped
    _, at, throttle = policy.daemon_died("sleep 1", 9, -9, lived=60, throttle=30.0, max_throttle=30, control=False,
                                         now=100.0)
    assert (at, throttle) == (100.0, 0.0)  # it had lived: at once, throttle forgotten
    actions, at, _ = policy.daemon_died("db", 10, 0, lived=60, throttle=0.0, max_throttle=30, control=True, now=1.0)
    assert at is None and Stop("graceful", "a control daemon died") in actions
