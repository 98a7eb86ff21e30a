"""Mules (reference §7.5): extra processes forked by the master after the app loaded. An idle mule
waits for uWSGI signals and mule messages (handed to `uwsgi.mule_msg_hook`, which uwsgidecorators
sets for @mulefunc); a mule with a file runs it as `__main__`, one with `module:function` calls it,
and when that returns the mule exits and the master respawns it.

A mule reads its own channel (`muleN`), the shared one (`mule0`, any mule) and its farms' channels;
each message is read by one mule only. This module must not serve requests.
"""

from __future__ import annotations

import importlib
import os
import runpy
import select
import signal
import socket
import sys
import traceback

from uisge.tasks.runtime import RT, say


class Mule:
    def __init__(self, mule_id: int, patch: str, control: socket.socket) -> None:
        self.mule_id = mule_id
        self.patch = patch
        self.control = control
        self.running = True
        channels = RT.channels or {}
        names = [f"mule{mule_id}", "mule0"] + [f"farm:{n}" for n, ids in RT.farms.items() if mule_id in ids]
        self.queues = [channels[n] for n in names if n in channels]
        self.buffered: list[bytes] = []

    def run(self) -> int:
        def leave(signum, frame):
            self.running = False
            raise SystemExit(0)

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, leave)
        if self.patch:
            return self._run_patch()
        while self.running:
            message = self.get(None)
            if message is None:
                return 0
            hook = getattr(sys.modules.get("uwsgi"), "mule_msg_hook", None)
            if hook is None:
                say(f"[uwsgi-mule {self.mule_id}] a message arrived but nothing handles it: set "
                    f"`uwsgi.mule_msg_hook` (uwsgidecorators does it for @mulefunc) ({len(message)} bytes dropped)")
                continue
            try:
                hook(message)
            except Exception:  # noqa: BLE001 - a failing message must not end the mule
                say(f"[uwsgi-mule {self.mule_id}] error handling a mule message:\n{traceback.format_exc().rstrip()}")
        return 0

    def _run_patch(self) -> int:
        patch = self.patch
        say(f"mule {self.mule_id} (pid: {os.getpid()}) running {patch}")
        if patch.endswith(".py") or os.sep in patch:
            runpy.run_path(patch, run_name="__main__")
        elif ":" in patch:
            module, _, func = patch.partition(":")
            getattr(importlib.import_module(module), func)()
        else:
            importlib.import_module(patch)
        say(f"mule {self.mule_id} (pid: {os.getpid()}): {patch} returned; the master respawns the mule")
        return 0

    def get(self, timeout: float | None, farms_only: bool = False) -> bytes | None:
        """The next mule message (b'' on timeout); uWSGI signals that arrive meanwhile are run here."""
        queues = [q for q in self.queues if not farms_only or q.name.startswith("farm:")]
        while self.running:
            for queue in queues:
                while (message := queue.receive()) is not None:
                    rest = RT.handle(message)
                    if rest is not None and rest[:1] == b"m":
                        return rest[1:]
            try:
                readable, _, _ = select.select([*(q.reader for q in queues), self.control], [], [], timeout)
            except InterruptedError:
                continue
            if self.control in readable:
                try:
                    if not self.control.recv(64):
                        say(f"mule {self.mule_id} (pid: {os.getpid()}): the master is gone; leaving")
                        self.running = False
                        return None
                except OSError:
                    return None
            if not readable:
                return b""
        return None


CURRENT: list[Mule] = []
