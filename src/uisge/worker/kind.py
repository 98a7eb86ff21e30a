"""Which worker loop serves the loaded apps: the epoll loop (worker/loop.py) for WSGI apps, the asyncio one
(worker/aloop.py, imported only then: asyncio and wsproto cost a WSGI instance nothing) for ASGI apps. The
loader has refused a mix of both."""

from __future__ import annotations

from uisge.asgi.detect import interface
from uisge.worker.loop import Worker


def worker_class(apps: list, forced: str = "auto") -> type[Worker]:
    """`forced`: the `interface` option."""
    if apps and interface(apps[0][1], forced) == "asgi":
        from uisge.worker.aloop import AsyncWorker

        return AsyncWorker
    return Worker
