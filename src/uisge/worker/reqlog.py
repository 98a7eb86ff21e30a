"""The request log line, in uWSGI's default format (reference §6.2), or a `log-format` template.

Lines are collected in a buffer and written with one write() per event-loop round, so logging costs
little on the request path. Nothing here touches client sockets.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

_ctime = [0, ""]


def ctime_now(now: float) -> str:
    sec = int(now)
    if sec != _ctime[0]:
        _ctime[0] = sec
        _ctime[1] = time.ctime(sec)
    return _ctime[1]


class RequestLog:
    __slots__ = ("buffer", "enabled", "micros", "x_forwarded_for", "template", "fd", "pid")

    def __init__(self, opts, fd: int = 2) -> None:
        self.buffer: list[str] = []
        self.enabled = not opts.disable_logging
        self.micros = opts.log_micros
        self.x_forwarded_for = opts.log_x_forwarded_for
        self.template = compile_format(opts.log_format) if opts.log_format else None
        self.fd = fd
        self.pid = os.getpid()

    def error(self, text: str) -> None:
        self.buffer.append(text if text.endswith("\n") else text + "\n")
        self.flush()

    def request(self, env: dict[str, Any], status: int, body: int, header_count: int, header_bytes: int,
                started: float, duration: float, nvars: int, var_bytes: int, app_req: int, total: int,
                core: int) -> None:
        addr = env.get("REMOTE_ADDR", "")
        if self.x_forwarded_for:
            addr = env.get("HTTP_X_FORWARDED_FOR", addr)
        if self.template is not None:
            self.buffer.append(self.template(env, status, body, header_bytes, header_count, started, duration,
                                             self.pid, core, addr) + "\n")
            return
        if self.micros:
            took = f"{int(duration * 1_000_000)} micros"
        else:
            took = f"{int(duration * 1000)} msecs"
        self.buffer.append(
            f"[pid: {self.pid}|app: 0|req: {app_req}/{total}] {addr} ({env.get('REMOTE_USER', '')}) "
            f"{{{nvars} vars in {var_bytes} bytes}} [{ctime_now(started)}] {env.get('REQUEST_METHOD', '')} "
            f"{env.get('REQUEST_URI', '')} => generated {body} bytes in {took} "
            f"({env.get('SERVER_PROTOCOL', '')} {status}) {header_count} headers in {header_bytes} bytes "
            f"(1 switches on core {core})\n")

    def flush(self) -> None:
        if not self.buffer:
            return
        data = "".join(self.buffer).encode("utf-8", "replace")
        self.buffer.clear()
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError:
            pass


_VAR = re.compile(r"%\(([^)]+)\)")


def compile_format(fmt: str):
    """A function producing one `log-format` line; unknown variables print `-` (as uWSGI)."""
    parts: list[Any] = []
    pos = 0
    for m in _VAR.finditer(fmt):
        parts.append(fmt[pos : m.start()])
        parts.append((m.group(1),))
        pos = m.end()
    parts.append(fmt[pos:])

    def render(env, status, body, hsize, headers, started, duration, pid, core, addr) -> str:
        out = []
        for part in parts:
            if type(part) is str:
                out.append(part)
                continue
            name = part[0]
            if name == "status":
                value: Any = status
            elif name == "addr":
                value = addr
            elif name == "uri":
                value = env.get("REQUEST_URI")
            elif name == "method":
                value = env.get("REQUEST_METHOD")
            elif name == "proto":
                value = env.get("SERVER_PROTOCOL")
            elif name == "user":
                value = env.get("REMOTE_USER")
            elif name == "host":
                value = env.get("HTTP_HOST")
            elif name == "uagent":
                value = env.get("HTTP_USER_AGENT")
            elif name == "referer":
                value = env.get("HTTP_REFERER")
            elif name == "rsize":
                value = body
            elif name == "hsize":
                value = hsize
            elif name == "size":
                value = body + hsize
            elif name == "cl":
                value = env.get("CONTENT_LENGTH")
            elif name == "msecs":
                value = int(duration * 1000)
            elif name == "micros":
                value = int(duration * 1_000_000)
            elif name == "secs":
                value = f"{duration:.6f}"
            elif name == "time":
                value = int(started)
            elif name == "tmsecs":
                value = int(started * 1000)
            elif name == "tmicros":
                value = int(started * 1_000_000)
            elif name == "epoch":
                value = int(time.time())
            elif name == "ltime":
                value = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(started))
            elif name == "ctime":
                value = ctime_now(started)
            elif name == "pid":
                value = pid
            elif name == "core":
                value = core
            elif name == "headers":
                value = headers
            elif name.startswith("var."):
                value = env.get(name[4:])
            else:
                value = None
            out.append("-" if value is None or value == "" else str(value))
        return "".join(out)

    return render
