"""cheaper's decisions, cycle by cycle, without processes (master/cheaper.py)."""

from uisge.master.cheaper import Cheaper, Settings, WorkerView, check


def workers(processes: int, running: dict[int, bool], extra: dict | None = None) -> list[WorkerView]:
    """running: wid -> busy, for the ids that run; the others are cheap. extra: wid -> more WorkerView fields."""
    extra = extra or {}
    return [WorkerView(w, w in running, busy=running.get(w, False), spawned=float(w), **extra.get(w, {}))
            for w in range(1, processes + 1)]


def settings(**kw) -> Settings:
    base = dict(processes=4, minimum=1, initial=1, step=1, overload=1)
    base.update(kw)
    return Settings(**base)


def test_check_says_what_is_wrong():
    assert check(settings()) is None
    assert "must be lower than processes" in check(settings(minimum=4))
    assert "cheaper-initial = 5" in check(settings(initial=5))
    assert "cheaper-algo = 'fast'" in check(settings(algo="fast"))
    assert "cheaper-busyness-min" in check(settings(busyness_min=60))
    assert "hard must be higher" in check(settings(rss_soft=200, rss_hard=100))


def test_spare_spawns_after_overload_cycles_of_all_busy_then_step():
    c = Cheaper(settings(overload=2, step=2))
    all_busy = workers(4, {1: True})
    assert c.decide(all_busy, 0, 0).spawn == []  # 1 busy cycle
    assert c.decide(all_busy, 0, 1).spawn == []  # 2
    assert c.decide(all_busy, 0, 2).spawn == [2, 3]  # more than cheaper-overload: a step of two
    assert c.decide(workers(4, {1: True, 2: True, 3: True}), 0, 3).spawn == []  # the count starts again


def test_spare_keeps_one_spare_worker_and_cheaps_the_oldest_idle_one():
    c = Cheaper(settings(overload=2))
    one_spare = workers(4, {1: True, 2: True, 3: False})
    for t in range(5):
        assert c.decide(one_spare, 0, t).cheap == []  # stable: exactly one spare
    two_idle = workers(4, {1: True, 2: False, 3: False})
    assert c.decide(two_idle, 0, 5).cheap == []  # idle cycle 1
    assert c.decide(two_idle, 0, 6).cheap == [2]  # every cheaper-overload idle cycles, the oldest idle one


def test_spare_never_goes_below_cheaper():
    c = Cheaper(settings(minimum=2, overload=1))
    assert c.decide(workers(4, {1: False, 2: False}), 0, 0).cheap == []


def test_backlog_follows_the_listen_queue():
    c = Cheaper(settings(algo="backlog", overload=3, step=2))
    assert c.decide(workers(4, {1: True}), 4, 0).spawn == [2, 3]
    assert c.decide(workers(4, {1: True, 2: True, 3: True}), 3, 1) .spawn == []  # not above the threshold
    assert c.decide(workers(4, {1: True, 2: False, 3: False}), 0, 2).cheap == [2]


def test_rss_soft_limit_stops_spawning_and_hard_limit_cheaps():
    busy = workers(4, {1: True, 2: True}, {1: {"rss": 60}, 2: {"rss": 60}})
    soft = Cheaper(settings(overload=1, rss_soft=100))
    for t in range(4):
        assert soft.decide(busy, 0, t).spawn == []
    hard = Cheaper(settings(overload=1, rss_soft=50, rss_hard=100))
    idle = workers(4, {1: False, 2: False}, {1: {"rss": 60}, 2: {"rss": 60}})
    decision = hard.decide(idle, 0, 0)
    assert decision.cheap == [1] and "hard rss memory limit" in decision.log[0]


def test_master_fifo_plus_and_minus():
    c = Cheaper(settings(algo="manual"))
    assert c.decide(workers(4, {1: False}), 0, 0, fifo_delta=1).spawn == [2]
    assert c.decide(workers(4, {1: False, 2: False}), 0, 1, fifo_delta=-1).cheap == [1]
    assert c.decide(workers(4, {2: False}), 0, 2, fifo_delta=-1).cheap == []  # never the last worker
    assert c.decide(workers(4, {2: True}), 0, 3).spawn == []  # manual: nothing by itself


def busy_for(wid_times: dict[int, float]) -> dict:
    return {wid: {"running_time": t} for wid, t in wid_times.items()}


def test_busyness_spawns_above_max_and_cheaps_below_min_after_the_multiplier():
    c = Cheaper(settings(algo="busyness", overload=2, busyness_multiplier=2))
    c.decide(workers(4, {1: False}, busy_for({1: 0.0})), 0, 0.0)  # first look: the baseline
    # 1.8 s of 2 s in requests: 90 % busy -> one more worker
    assert c.decide(workers(4, {1: True}, busy_for({1: 1.8})), 0, 2.0).spawn == [2]
    # then both idle: cheaped only once cheaper-overload x multiplier (4 s) passed since the spawn
    idle = workers(4, {1: False, 2: False}, busy_for({1: 1.8, 2: 0.0}))
    assert c.decide(idle, 0, 4.0).cheap == []
    decision = c.decide(idle, 0, 6.0)
    assert decision.cheap == [1] and "cheap one of 2 running workers" in decision.log[-1]


def test_busyness_marks_a_worker_full_when_a_long_request_finished_nothing():
    c = Cheaper(settings(algo="busyness", overload=1))
    c.decide(workers(4, {1: True}, busy_for({1: 0.0})), 0, 0.0)
    assert c.decide(workers(4, {1: True}, busy_for({1: 0.0})), 0, 1.0).spawn == [2]


def test_busyness_emergency_worker_on_a_long_listen_queue():
    c = Cheaper(settings(algo="busyness", overload=3, backlog_alert=10, backlog_step=2))
    c.decide(workers(4, {1: False}), 0, 0.0)
    decision = c.decide(workers(4, {1: False}), 50, 0.5)  # between checks: the queue is looked at every cycle
    assert decision.spawn == [2, 3] and "emergency worker" in decision.log[0]
