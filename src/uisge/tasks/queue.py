"""The group's spool queue in Redis (tasks-backend): `uwsgi.spool()` in any process of any instance puts a
task here (the same uwsgi packet a spool file holds, body included), and any instance's spooler takes it.

Each task is run at least once: a spooler takes it atomically (a script moves it from `ready` to `running`
with a deadline VISIBILITY seconds ahead) and keeps pushing that deadline while the task runs; a task whose
spooler dies (kill -9, spooler-harakiri, a lost host) goes back to `ready` when its deadline passes and
another spooler runs it again. SPOOL_OK deletes it; a retry puts it back after spooler-frequency seconds.
Order: priority first (as uWSGI's numbered subdirectories: the lowest number first, tasks without one
last), then the oldest; `at` holds a task in `delayed` until its time.

One client per process, made on first use (after a fork it is made anew). Pure: `band()`.
"""

from __future__ import annotations

import os
import time
import uuid

PREFIX = "uisge:spool:"
READY, DELAYED, RUNNING, TASK = PREFIX + "ready", PREFIX + "delayed", PREFIX + "running", PREFIX + "task:"
SEQUENCE = PREFIX + "sequence"
VISIBILITY = 10.0  # seconds a taken task stays invisible without a heartbeat from its spooler
NO_PRIORITY = 100  # tasks without a priority run after every numbered priority

# queue a task: its place in its priority band is the group-wide order of queuing (a counter, not a clock)
_PUT = """
local score = tonumber(ARGV[3]) * 1e13 + redis.call('incr', KEYS[4])
redis.call('hset', KEYS[3] .. ARGV[1], 'packet', ARGV[2], 'score', score, 'tries', 0)
if ARGV[4] ~= '' and tonumber(ARGV[4]) > tonumber(ARGV[5]) then
  redis.call('zadd', KEYS[2], tonumber(ARGV[4]), ARGV[1])
else
  redis.call('zadd', KEYS[1], score, ARGV[1])
end
return score
"""

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


def band(priority: str | None) -> int:
    """The priority band a task runs in (lower first): its number, or after all numbered ones."""
    if priority is not None and priority.isdigit():
        return min(int(priority), NO_PRIORITY - 1)
    return NO_PRIORITY


class Queue:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.take_script = self.client.register_script(_TAKE)
        self.put_script = self.client.register_script(_PUT)

    def put(self, packet: bytes, priority: str | None, at: float | None) -> str:
        task_id = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        self.put_script(keys=[READY, DELAYED, TASK, SEQUENCE],
                        args=[task_id, packet, band(priority), "" if at is None else repr(at), repr(time.time())])
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

