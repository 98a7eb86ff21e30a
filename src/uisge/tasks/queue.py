"""The group's spool queue in Redis (tasks-backend): `uwsgi.spool()` in any process of any instance puts a
task here (the same uwsgi packet a spool file holds, body included), and any instance's spooler takes it.

Each task is run at least once: a spooler takes it atomically (a script moves it from `ready` to `running`
with a deadline VISIBILITY seconds ahead) and keeps pushing that deadline while the task runs; a task whose
spooler dies (kill -9, spooler-harakiri, a lost host) goes back to `ready` when its deadline passes and
another spooler runs it again. SPOOL_OK deletes it; a retry puts it back after spooler-frequency seconds.
Order: priority first (as uWSGI's numbered subdirectories: the lowest number first, tasks without one
last), then the oldest; `at` holds a task in `delayed` until its time.

One client per process, made on first use (after a fork it is made anew). Pure: `ready_score()`.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

PREFIX = "uisge:spool:"
READY, DELAYED, RUNNING, TASK = PREFIX + "ready", PREFIX + "delayed", PREFIX + "running", PREFIX + "task:"
VISIBILITY = 10.0  # seconds a taken task stays invisible without a heartbeat from its spooler
NO_PRIORITY = 100  # tasks without a priority run after every numbered priority

# requeue the tasks of dead spoolers, move due delayed tasks to ready, take the first ready one
_TAKE = """
local now = tonumber(ARGV[1])
for _, set in ipairs({KEYS[3], KEYS[2]}) do
  for _, id in ipairs(redis.call('zrangebyscore', set, '-inf', now)) do
    redis.call('zrem', set, id)
    local score = redis.call('hget', KEYS[4] .. id, 'score')
    if score then redis.call('zadd', KEYS[1], score, id) end
  end
end
local top = redis.call('zpopmin', KEYS[1])
if #top == 0 then return false end
local id = top[1]
redis.call('zadd', KEYS[3], now + tonumber(ARGV[2]), id)
redis.call('hincrby', KEYS[4] .. id, 'tries', 1)
return {id, redis.call('hget', KEYS[4] .. id, 'packet')}
"""


def ready_score(priority: str | None, queued_at: float) -> float:
    """Lower runs first: the priority band, then the time it was queued (ms)."""
    band = NO_PRIORITY
    if priority is not None and priority.isdigit():
        band = min(int(priority), NO_PRIORITY - 1)
    return band * 1e13 + int(queued_at * 1000)


class Queue:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.take_script = self.client.register_script(_TAKE)

    def put(self, packet: bytes, priority: str | None, at: float | None) -> str:
        task_id = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        now = time.time()
        score = ready_score(priority, now)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(TASK + task_id, mapping={"packet": packet, "score": score, "tries": 0})
        if at is not None and at > now:
            pipe.zadd(DELAYED, {task_id: at})
        else:
            pipe.zadd(READY, {task_id: score})
        pipe.execute()
        return task_id

    def take(self) -> tuple[str, bytes] | None:
        found = self.take_script(keys=[READY, DELAYED, RUNNING, TASK], args=[time.time(), VISIBILITY])
        if not found:
            return None
        task_id, packet = found
        if packet is None:  # deleted meanwhile
            self.client.zrem(RUNNING, task_id)
            return None
        return task_id.decode(), packet

    def extend(self, task_id: str) -> None:
        self.client.zadd(RUNNING, {task_id: time.time() + VISIBILITY}, xx=True)

    def done(self, task_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(RUNNING, task_id)
        pipe.delete(TASK + task_id)
        pipe.execute()

    def retry(self, task_id: str, after: float) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(RUNNING, task_id)
        pipe.zadd(DELAYED, {task_id: time.time() + after})
        pipe.execute()

    def counts(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(READY)
        pipe.zcard(DELAYED)
        pipe.zcard(RUNNING)
        ready, delayed, running = pipe.execute()
        return {"ready": ready, "delayed": delayed, "running": running}

    def pending(self) -> list[str]:
        return [i.decode() for i in self.client.zrange(READY, 0, -1) + self.client.zrange(DELAYED, 0, -1)]


_QUEUES: dict[tuple[int, str], Queue] = {}


def queue_for(url: str) -> Queue:
    """This process's client for the group's queue."""
    key = (os.getpid(), url)
    found = _QUEUES.get(key)
    if found is None:
        found = _QUEUES[key] = Queue(url)
    return found


def describe(task_id: str) -> str:
    return f"redis:{task_id}"


def parse(name: Any) -> str | None:
    text = name.decode() if isinstance(name, bytes) else str(name)
    return text[6:] if text.startswith("redis:") else None
