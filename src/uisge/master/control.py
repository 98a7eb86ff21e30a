"""The one-shot control commands: `uisge --stop PIDFILE` (SIGINT, as uWSGI), `--reload PIDFILE` (SIGHUP),
`--pause PIDFILE` (SIGTSTP). They read the pidfile, signal the master and exit; they never start a
server. Exit status 0 on success, 1 with a message that says what to check otherwise.
"""

from __future__ import annotations

import os
import signal
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
