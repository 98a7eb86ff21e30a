"""Several instances, one group (issue 17): instances whose `tasks-backend` names the same Redis share one
scheduler lease, so `@timer`, `@cron`, `cron =` and friends run once per group, not once per instance.

A thread in the master (never the master's loop: Redis may be slow or gone) beats once a second: it
records this instance among the members, takes the lease if nobody holds it (SET NX with a TTL) or renews
its own (a compare-and-extend script), and reads who leads. The scheduler asks `leading()`, which answers
from the last successful beat with a margin, so an instance that loses Redis stops firing before its lease
can pass to another one: a job never runs twice across a change of leader, and a new leader takes over
within TTL + one beat of the old one's death (kill -9 included). `claim()` dedupes a cron's minute across
leaders. Redis unreachable: the instance keeps serving, says so once a minute, and nobody fires until it
is back (there is no catch-up burst: missed timer intervals are skipped).

Needs redis-py (`pip install 'uisge[redis]'`). Pure decisions are `lease_valid()` and `redact()`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from uisge.tasks.queue import DELAYED, READY, RUNNING

PREFIX = "uisge:"
LEASE_TTL = 3.0  # seconds the scheduler lease lives in Redis without a renewal
MARGIN = 1.0  # the leader stops firing this long before its lease could expire in Redis
BEAT = 1.0  # seconds between beats
MEMBER_TTL = 10.0  # a member not seen for this long is dropped from the list
ERROR_EVERY = 60.0  # seconds between two log lines about an unreachable backend

# the lease: taken if nobody holds it, renewed if this instance does; returns who holds it now
_LEASE = """
local holder = redis.call('get', KEYS[1])
if not holder then
    redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
    return ARGV[1]
end
if holder == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
end
return holder
"""

# delete a key only if it still holds this token (a lease given back, a group-wide lock released)
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def lease_valid(renewed_at: float, now: float, ttl: float = LEASE_TTL, margin: float = MARGIN) -> bool:
    """Whether a lease taken or renewed at `renewed_at` (before the request went out) may still be acted on."""
    return renewed_at > 0 and now < renewed_at + ttl - margin


def redact(url: str) -> str:
    """The backend URL without its password, for logs and the stats."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def check_url(url: str) -> str | None:
    """Why `url` is not a tasks-backend URL, or None."""
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        return f"{url!r} is not a Redis URL (redis://HOST:PORT/DB, rediss://..., unix:///path/to/redis.sock)"
    return None


class Group:
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis
        self.url = url
        # what the thread has to say, written by the master's loop (drain()): a thread writing to stderr while
        # the master forks could leave the child a held stream lock
        self.messages: deque[str] = deque(maxlen=100)
        self.say = self.messages.append
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.lease = self.client.register_script(_LEASE)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.renewed_at = 0.0  # monotonic time of the last successful take or renewal (sent at)
        self.leader = ""
        self.members: list[str] = []
        self.queue = {"ready": 0, "delayed": 0, "running": 0}  # the group's spool queue (tasks/queue.py)
        self.reachable = True
        self.error_said = -ERROR_EVERY
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="uisge-group", daemon=True)

    # -- the master's side
    def drain(self) -> list[str]:
        out = []
        while self.messages:
            out.append(self.messages.popleft())
        return out

    def start(self) -> None:
        self.say(f"tasks-backend {redact(self.url)}: this instance is {self.id}")
        self.thread.start()

    def stop(self) -> None:
        """Leave the group: the lease is given back at once (another instance takes it at its next beat)."""
        self.stopped.set()
        self.thread.join(2)
        try:
            if self.leading():
                self.client.eval(RELEASE, 1, PREFIX + "leader", self.id)
            self.client.zrem(PREFIX + "members", self.id)
        except self.redis.RedisError:
            pass

    def leading(self) -> bool:
        return lease_valid(self.renewed_at, time.monotonic())

    def claim(self, key: str, ttl: int) -> bool:
        """Take `key` for `ttl` seconds if nobody has (a cron's minute, once per group)."""
        try:
            return bool(self.client.set(PREFIX + key, self.id, nx=True, ex=ttl))
        except self.redis.RedisError as exc:
            self._failed(exc)
            return False

    def state(self) -> dict[str, Any]:
        return {"backend": redact(self.url), "instance": self.id, "members": list(self.members),
                "leader": self.leader, "leading": self.leading(), "reachable": self.reachable,
                "queue": dict(self.queue)}

    # -- the thread
    def _run(self) -> None:
        while not self.stopped.is_set():
            self._beat()
            self.stopped.wait(BEAT)

    def _beat(self) -> None:
        sent = time.monotonic()
        try:
            now = time.time()
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(PREFIX + "members", {self.id: now})
            pipe.zremrangebyscore(PREFIX + "members", "-inf", now - MEMBER_TTL)
            self.lease(keys=[PREFIX + "leader"], args=[self.id, int(LEASE_TTL * 1000)], client=pipe)
            pipe.zrange(PREFIX + "members", 0, -1)
            pipe.zcard(READY)
            pipe.zcard(DELAYED)
            pipe.zcard(RUNNING)
            _, _, holder, members, ready, delayed, running = pipe.execute()
            self.queue = {"ready": ready, "delayed": delayed, "running": running}
            self.leader = holder.decode()
            if self.leader == self.id:
                if not self.leading():
                    self.say(f"tasks-backend: {self.id} now holds the scheduler lease: the group's timers and "
                             f"crons run here")
                self.renewed_at = sent
            self.members = sorted(m.decode() for m in members)
            if not self.reachable:
                self.reachable = True
                self.say(f"tasks-backend {redact(self.url)} is reachable again")
        except self.redis.RedisError as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.reachable = False
        now = time.monotonic()
        if now - self.error_said >= ERROR_EVERY:
            self.error_said = now
            self.say(f"tasks-backend {redact(self.url)} is unreachable ({exc}); requests are served as usual, the "
                     f"group's timers and crons wait for it (said once a minute)")
