"""The one-shot control commands: `uisge --stop PIDFILE` (SIGINT, as uWSGI), `--reload PIDFILE` (SIGHUP),
`--pause PIDFILE` (SIGTSTP), and `--connect-and-read ADDRESS` (print a stats socket's document). They
act and exit; they never start a server. Exit status 0 on success, 1 with a message that says what to check otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from uisge.errors import UisgeError
from uisge.master import pidfile

SIGNALS = {"stop": signal.SIGINT, "reload": signal.SIGHUP, "pause": signal.SIGTSTP}
WORDS = {"stop": "stop", "reload": "graceful reload", "pause": "pause/resume"}


def run(action: str, path: str) -> int:
    try:
        pid = pidfile.read(path)
    except UisgeError as exc:
        sys.stderr.write(f"uisge --{action}: {exc}\n")
        return 1
    try:
        os.kill(pid, SIGNALS[action])
    except ProcessLookupError:
        sys.stderr.write(f"uisge --{action}: no process {pid} (from {path}): the server is not running; "
                         f"the pidfile is stale\n")
        return 1
    except PermissionError:
        sys.stderr.write(f"uisge --{action}: not allowed to signal process {pid} (from {path}); run as its user\n")
        return 1
    sys.stderr.write(f"uisge: sent {signal.Signals(SIGNALS[action]).name} ({WORDS[action]}) to {pid}\n")
    return 0


def connect_and_read(addr) -> int:
    """`--connect-and-read ADDRESS`: print what a stats socket sends until it closes (as uWSGI does)."""
    try:
        if addr.family == "unix":
            sock = socket.socket(socket.AF_UNIX)
            path = addr.path
            sock.connect("\0" + path[1:] if path.startswith("@") else path)
        else:
            sock = socket.create_connection((addr.host or "127.0.0.1", addr.port), timeout=10)
    except OSError as exc:
        sys.stderr.write(f"uisge --connect-and-read {addr.text}: cannot connect: {exc.strerror or exc}\n")
        return 1
    sock.settimeout(10)
    with sock:
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sys.stderr.write(data.decode("utf-8", "replace"))
        except OSError as exc:
            sys.stderr.write(f"\nuisge --connect-and-read {addr.text}: {exc}\n")
            return 1
    sys.stderr.write("\n")
    return 0
