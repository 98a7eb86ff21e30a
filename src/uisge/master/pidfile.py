"""Pidfiles: write one atomically, read one for `--stop`/`--reload`/`--pause`, remove one on exit.

A pidfile is replaced whole (temp file + rename), so a reader never sees half a number. Nothing here
sends signals on its own; control.py does.
"""

from __future__ import annotations

import os

from uisge.errors import UisgeError


def write(path: str, pid: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UisgeError(f"pidfile = {path}: directory {directory} does not exist; create it or choose another path")
    tmp = f"{path}.{pid}.tmp"
    try:
        with open(tmp, "w") as fh:
            fh.write(f"{pid}\n")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UisgeError(f"pidfile = {path}: cannot write it: {exc.strerror or exc}") from None


def read(path: str) -> int:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        raise UisgeError(f"pidfile {path} does not exist: is the server running with `pidfile = {path}`?") from None
    except OSError as exc:
        raise UisgeError(f"cannot read pidfile {path}: {exc.strerror or exc}") from None
    if not text.isdigit() or int(text) <= 0:
        raise UisgeError(f"invalid pidfile {path}: it should hold a process id, it holds {text[:40]!r}")
    return int(text)


def remove(path: str, pid: int) -> None:
    """Remove the pidfile if it still names `pid` (a newer instance may have replaced it)."""
    try:
        with open(path) as fh:
            if fh.read().strip() != str(pid):
                return
        os.unlink(path)
    except OSError:
        pass
