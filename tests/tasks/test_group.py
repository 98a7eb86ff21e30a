"""tasks/group.py's decisions, and the scheduler firing only where the group's lease is (its gate). The
group against a real redis-server is driven in tests/integration/test_group.py."""

import time

from uisge.tasks.group import LEASE_TTL, MARGIN, check_url, lease_valid, redact
from uisge.tasks.scheduler import Scheduler


def test_a_lease_is_acted_on_only_well_before_it_can_expire_in_redis():
    assert not lease_valid(0.0, 5.0)  # never taken
    assert lease_valid(100.0, 100.0) and lease_valid(100.0, 100.0 + LEASE_TTL - MARGIN - 0.01)
    assert not lease_valid(100.0, 100.0 + LEASE_TTL - MARGIN)  # the old leader stops before anyone can take over


def test_backend_urls_are_checked_and_shown_without_their_password():
    assert check_url("redis://127.0.0.1:6379/0") is None and check_url("unix:///run/redis.sock") is None
    assert check_url("rediss://cache:6380/1") is None
    assert "is not a Redis URL" in check_url("http://127.0.0.1:6379")
    assert redact("redis://user:s3cret@cache:6379/0") == "redis://user:***@cache:6379/0"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"


class Gate:
    def __init__(self, leading: bool) -> None:
        self.lead = leading
        self.claimed: set[str] = set()

    def leading(self) -> bool:
        return self.lead

    def claim(self, key: str, ttl: int) -> bool:
        if key in self.claimed:
            return False
        self.claimed.add(key)
        return True


def test_timers_fire_only_while_leading_and_missed_intervals_are_not_owed():
    fired = []
    sched = Scheduler(lambda num, target: fired.append(num))
    gate = sched.gate = Gate(False)
    sched.add({"op": "timer", "num": 7, "secs": 1})
    now = time.monotonic()
    for second in range(1, 6):  # five intervals without the lease
        sched.tick(now + second, time.time())
    assert fired == []
    gate.lead = True
    sched.tick(now + 6, time.time())
    sched.tick(now + 6.2, time.time())
    assert fired == [7]  # one, not the five missed ones


def test_a_cron_minute_runs_once_across_a_change_of_leader():
    fired = []
    first, second = Scheduler(lambda num, target: fired.append(("first", num))), \
        Scheduler(lambda num, target: fired.append(("second", num)))
    shared = Gate(True)
    first.gate = shared
    second.gate = Gate(True)
    second.gate.claimed = shared.claimed  # the same Redis keys
    for sched in (first, second):
        sched.add({"op": "cron", "num": 3, "rule": [-1, -1, -1, -1, -1]})
    wall = time.time()
    first.tick(time.monotonic(), wall)
    second.tick(time.monotonic(), wall)  # took over within the same minute
    assert fired == [("first", 3)]
    first.tick(time.monotonic(), wall + 60)
    assert fired == [("first", 3), ("first", 3)]
