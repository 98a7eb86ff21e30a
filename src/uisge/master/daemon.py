"""`daemonize = LOGFILE`: detach from the terminal (fork, setsid, fork) and return the shell, but only
once the server is up: the first process waits until the daemon says "ready" (or dies) and prints
where it runs, or why it failed with the end of the log. Nothing here opens sockets.
"""

from __future__ import annotations

import os
import sys
import time


def detach(log_path: str, terminal_fd: int, wait: float = 300.0) -> int:
    """In the daemon, return the fd to write b"ok" to once serving; the calling process never returns."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(ready_w)
        os.waitpid(pid, 0)  # the intermediate child exits at once
        data = _read_until_eof(ready_r, wait)
        out = os.fdopen(terminal_fd, "w")
        if data.startswith(b"ok"):
            out.write(f"uisge: serving in the background (master pid {data[2:].decode().strip()}), "
                      f"logging to {log_path}\n")
            out.flush()
            os._exit(0)
        out.write(f"uisge: the server did not start; the end of {log_path}:\n{_tail(log_path)}")
        out.flush()
        os._exit(1)
    os.close(ready_r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.close(terminal_fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return ready_w


def _read_until_eof(fd: int, wait: float) -> bytes:
    deadline = time.monotonic() + wait
    data = b""
    while time.monotonic() < deadline:
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
        if data.startswith(b"ok") and data.endswith(b"\n"):
            break
    return data


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError as exc:
        return f"(cannot read it: {exc})\n"


def say_ready(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, f"ok{os.getpid()}\n".encode())
        os.close(fd)
    except OSError:
        pass
