"""The request log line, in uWSGI's default format (reference §6.2), or a `log-format` template.

Lines are collected in a buffer and written with one write() per event-loop round, so logging costs
little on the request path. With `disable-logging`, the log filters (`log-4xx`, `log-5xx`, `log-slow`,
`log-big`, `log-zero`, `log-sendfile`) still log the requests they match, as uWSGI does. Nothing here
touches client sockets.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from uisge.logfile import request_fd, stamp

_ctime = [0, ""]


def ctime_now(now: float) -> str:
    sec = int(now)
    if sec != _ctime[0]:
        _ctime[0] = sec
        _ctime[1] = time.ctime(sec)
    return _ctime[1]


class RequestLog:
    __slots__ = ("buffer", "enabled", "micros", "x_forwarded_for", "template", "fd", "pid", "scale", "line", "json",
                 "prefix", "unit", "ctime", "plain", "memory_report", "dated", "filters", "log_4xx", "log_5xx",
                 "log_slow", "log_big", "log_zero", "log_sendfile", "error_fd")

    def __init__(self, opts, fd: int | None = None) -> None:
        self.buffer: list[str] = []
        self.enabled = not opts.disable_logging
        self.micros = opts.log_micros
        self.x_forwarded_for = opts.log_x_forwarded_for
        self.template = compile_format(opts.log_format) if opts.log_format else None
        self.json = bool(opts.log_json)
        self.memory_report = bool(opts.memory_report)
        self.dated = opts.log_date not in (None, False)
        self.plain = not (self.json or self.template or self.x_forwarded_for or self.dated)  # fast() may be used
        # with disable-logging, the requests these match are logged anyway
        self.log_4xx, self.log_5xx = bool(opts.log_4xx), bool(opts.log_5xx)
        self.log_slow = (opts.log_slow or 0) / 1000  # milliseconds -> seconds
        self.log_big = opts.log_big or 0
        self.log_zero, self.log_sendfile = bool(opts.log_zero), bool(opts.log_sendfile)
        self.filters = not self.enabled and bool(self.log_4xx or self.log_5xx or self.log_slow or self.log_big
                                                 or self.log_zero or self.log_sendfile)
        self.fd = request_fd[0] if fd is None else fd  # stderr (the log), or `req-logger = file:PATH`'s file
        self.error_fd = 2  # server messages: always the log
        self.pid = os.getpid()
        # uWSGI's default line (reference §6.2), with the constant parts filled in once
        self.prefix = f"[pid: {self.pid}|app: 0|req: "
        self.unit = unit = "micros" if self.micros else "msecs"
        self.scale = 1_000_000 if self.micros else 1000
        self.ctime = ctime_now(time.time())  # the request's second, refreshed by the worker each loop round
        self.line = (f"[pid: {self.pid}|app: 0|req: %d/%d] %s (%s) {{%d vars in %d bytes}} [%s] %s %s => "
                     f"generated %d bytes in %d {unit} (%s %d) %d headers in %d bytes (1 switches on core %d)\n")

    def error(self, text: str) -> None:
        """A server message (an error): on the log, after the request lines before it."""
        line = stamp() + (text if text.endswith("\n") else text + "\n")
        if self.fd == self.error_fd:
            self.buffer.append(line)
            self.flush()
        else:  # request lines go to their own file; errors stay on the log
            self.flush()
            _write_all(self.error_fd, line.encode("utf-8", "replace"))

    def matches(self, status: int, body: int, duration: float, sent_file: bool) -> bool:
        """disable-logging is on: whether a log filter wants this request anyway."""
        return ((self.log_4xx and 400 <= status < 500) or (self.log_5xx and status >= 500)
                or (self.log_slow and duration > self.log_slow) or (self.log_big and body > self.log_big)
                or (self.log_zero and body == 0) or (self.log_sendfile and sent_file))

    def fast(self, env: dict[str, Any], r, duration: float, nvars: int, var_bytes: int, n: int) -> None:
        """The default line for a finished request, read straight off its Response `r` (the hot path)."""
        self.buffer.append(
            f"{self.memory() if self.memory_report else ''}{self.prefix}{n}/{n}] {env.get('REMOTE_ADDR', '')} ({env.get('REMOTE_USER', '')}) {{{nvars} vars in "
            f"{var_bytes} bytes}} [{self.ctime}] {env.get('REQUEST_METHOD', '')} {env.get('REQUEST_URI', '')} => "
            f"generated {r.body_sent} bytes in {int(duration * self.scale)} {self.unit} "
            f"({env.get('SERVER_PROTOCOL', '')} {r.status_code}) {r.header_count + r.http} headers in "
            f"{r.header_bytes} bytes (1 switches on core 0)\n")

    @staticmethod
    def memory() -> str:
        """`memory-report`: uWSGI's prefix with this process's address space and resident memory."""
        from uisge.worker.health import memory

        size, rss = memory()
        return f"{{address space usage: {size} bytes/{size >> 20}MB}} {{rss usage: {rss} bytes/{rss >> 20}MB}} "

    def request(self, env: dict[str, Any], status: int, body: int, header_count: int, header_bytes: int,
                started: float, duration: float, nvars: int, var_bytes: int, app_req: int, total: int,
                core: int) -> None:
        addr = env.get("REMOTE_ADDR", "")
        if self.x_forwarded_for:
            addr = env.get("HTTP_X_FORWARDED_FOR", addr)
        date = stamp() if self.dated else ""
        if self.json:
            self.buffer.append(date + json_line(env, status, body, header_bytes, started, duration, self.pid, addr))
            return
        if self.template is not None:
            self.buffer.append(date + self.template(env, status, body, header_bytes, header_count, started,
                                                    duration, self.pid, core, addr) + "\n")
            return
        self.buffer.append(date + (self.memory() if self.memory_report else "") + self.line % (
            app_req, total, addr, env.get("REMOTE_USER", ""), nvars, var_bytes, ctime_now(started),
            env.get("REQUEST_METHOD", ""), env.get("REQUEST_URI", ""), body,
            int(duration * self.scale), env.get("SERVER_PROTOCOL", ""), status, header_count, header_bytes, core))

    def flush(self) -> None:
        if not self.buffer:
            return
        data = "".join(self.buffer).encode("utf-8", "replace")
        self.buffer.clear()
        _write_all(self.fd, data)


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            n = os.write(fd, data)
            data = data[n:]
    except OSError:
        pass


def json_line(env: dict[str, Any], status: int, body: int, header_bytes: int, started: float, duration: float,
              pid: int, addr: str) -> str:
    """`log-json`: one JSON object per request; json.dumps escapes whatever the client sent."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)) + f".{int(started % 1 * 1000):03d}Z"
    return json.dumps({
        "time": stamp, "pid": pid, "addr": addr, "user": env.get("REMOTE_USER"),
        "method": env.get("REQUEST_METHOD", ""), "uri": env.get("REQUEST_URI", ""),
        "proto": env.get("SERVER_PROTOCOL", ""), "status": status, "size": body, "header_size": header_bytes,
        "duration_ms": round(duration * 1000, 3), "host": env.get("HTTP_HOST"),
        "user_agent": env.get("HTTP_USER_AGENT"), "referer": env.get("HTTP_REFERER"),
    }, ensure_ascii=False) + "\n"


_VAR = re.compile(r"%\(([^)]+)\)")


class _Line:
    """The facts of one finished request, for log-format variables."""

    __slots__ = ("env", "status", "body", "hsize", "headers", "started", "duration", "pid", "core", "addr")

    def __init__(self, *values) -> None:
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)


def _logvar(name: str):
    """A variable the app set with uwsgi.set_logvar() during the request (`-` when it did not)."""
    return lambda r: r.env.get("uwsgi.logvars", {}).get(name)


def _env(key: str):
    return lambda r: r.env.get(key)


# log-format variable -> how to read it off a finished request (uWSGI's names, reference §6.3)
_VARIABLES = {
    "status": lambda r: r.status,
    "addr": lambda r: r.addr,
    "uri": _env("REQUEST_URI"),
    "method": _env("REQUEST_METHOD"),
    "proto": _env("SERVER_PROTOCOL"),
    "user": _env("REMOTE_USER"),
    "host": _env("HTTP_HOST"),
    "uagent": _env("HTTP_USER_AGENT"),
    "referer": _env("HTTP_REFERER"),
    "cl": _env("CONTENT_LENGTH"),
    "rsize": lambda r: r.body,
    "hsize": lambda r: r.hsize,
    "size": lambda r: r.body + r.hsize,
    "headers": lambda r: r.headers,
    "msecs": lambda r: int(r.duration * 1000),
    "micros": lambda r: int(r.duration * 1_000_000),
    "secs": lambda r: f"{r.duration:.6f}",
    "time": lambda r: int(r.started),
    "tmsecs": lambda r: int(r.started * 1000),
    "tmicros": lambda r: int(r.started * 1_000_000),
    "epoch": lambda r: int(time.time()),
    "ltime": lambda r: time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(r.started)),
    "ctime": lambda r: ctime_now(r.started),
    "pid": lambda r: r.pid,
    "core": lambda r: r.core,
}


def compile_format(fmt: str):
    """A function producing one `log-format` line; unknown or empty variables print `-` (as uWSGI)."""
    parts: list[Any] = []
    pos = 0
    for m in _VAR.finditer(fmt):
        parts.append(fmt[pos : m.start()])
        name = m.group(1)
        parts.append(_env(name[4:]) if name.startswith("var.") else _VARIABLES.get(name) or _logvar(name))
        pos = m.end()
    parts.append(fmt[pos:])

    def render(*values) -> str:
        line = _Line(*values)
        out = []
        for part in parts:
            if type(part) is str:
                out.append(part)
                continue
            value = part(line)
            out.append("-" if value is None or value == "" else str(value))
        return "".join(out)

    return render
