"""ASGI lifespan, once per worker: `startup` before the worker serves, `shutdown` when it stops. An app that
raises at once on the lifespan scope does not speak it (Django's ASGIHandler): the worker serves without it.
A `lifespan.startup.failed`, or an error after startup began, is the app's error and stops the worker."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from uisge.asgi.scope import ASGI


class Lifespan:
    def __init__(self, app: Callable, state: dict) -> None:
        self.app = app
        self.state = state
        self.events: asyncio.Queue = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.spoken = False  # the app sent a lifespan message: it speaks the protocol
        self.supported = True
        self.error: str | None = None
        self.task: asyncio.Task | None = None

    async def _receive(self) -> dict:
        return await self.events.get()

    async def _send(self, message: dict) -> None:
        self.spoken = True
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.started.set()
        elif kind == "lifespan.startup.failed":
            self.error = message.get("message") or "lifespan.startup.failed"
            self.started.set()
        elif kind == "lifespan.shutdown.complete":
            self.stopped.set()
        elif kind == "lifespan.shutdown.failed":
            self.error = message.get("message") or "lifespan.shutdown.failed"
            self.stopped.set()

    async def _run(self) -> None:
        try:
            await self.app({"type": "lifespan", "asgi": ASGI, "state": self.state}, self._receive, self._send)
        except Exception as exc:  # noqa: BLE001 - the app's error, reported by startup()/shutdown()
            if not self.spoken:
                self.supported = False
                self.reason = f"{type(exc).__name__}: {exc}"
            else:
                self.error = self.error or f"{type(exc).__name__}: {exc}"
        finally:
            self.started.set()
            self.stopped.set()

    async def startup(self) -> str | None:
        """None when the app started (or does not speak lifespan); else its error."""
        self.task = asyncio.ensure_future(self._run())
        await self.events.put({"type": "lifespan.startup"})
        await self.started.wait()
        return self.error if self.supported else None

    async def shutdown(self, timeout: float) -> str | None:
        if not self.supported or self.task is None or self.task.done():
            return None
        await self.events.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self.stopped.wait(), timeout)
        except asyncio.TimeoutError:
            self.task.cancel()
            return f"lifespan shutdown did not complete within {timeout:g} s"
        return self.error

    reason: Any = None  # why the app does not speak lifespan (the exception it raised)
