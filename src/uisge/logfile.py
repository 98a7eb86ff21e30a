"""Where the server log goes: stderr by default, or the file of `logto`/`daemonize`, put on fds 1 and 2
so app print()s and tracebacks land there too (`logto2`: opened after privileges are dropped). Rotation
for `log-maxsize` (rename to FILE.TIMESTAMP, reopen). Opening is checked before anything detaches, so a
bad path is an error on the terminal. `say()` writes one server message, with the `log-date` prefix.
"""

from __future__ import annotations

import os
import sys
import time

from uisge.errors import UisgeError


_date: list = [None]  # log-date: None off, "" uWSGI's default (ctime), else a strftime format


def set_date(value) -> None:
    """`log-date` as loaded: unset/False (off), True or "" (the default format), or a strftime format."""
    _date[0] = None if value in (None, False) else ("" if value is True else str(value))


def stamp() -> str:
    """The `log-date` prefix of a line written now ("" when log-date is off)."""
    fmt = _date[0]
    if fmt is None:
        return ""
    return (time.strftime(fmt) if fmt else time.ctime()) + " - "


def say(text: str) -> None:
    """One server message on the log (stderr, which is the log file when there is one)."""
    sys.stderr.write(stamp() + text + "\n")
    sys.stderr.flush()


def log_path(opts) -> str | None:
    """The log file, if any (what the master reopens and rotates)."""
    return opts.daemonize or opts.daemonize2 or opts.logto or opts.logto2 or None


def early_path(opts) -> str | None:
    """The log file opened before privileges are dropped; `logto2` alone is opened after (server.py)."""
    return opts.daemonize or opts.daemonize2 or opts.logto or None


def open_log(path: str, truncate: bool = False, option: str = "logto") -> None:
    """Open `path` for appending and make it fds 1 and 2."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise UisgeError(f"{option} = {path}: directory {directory} does not exist and cannot be created "
                             f"({exc.strerror or exc}); create it or choose another path") from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as exc:
        raise UisgeError(f"{option} = {path}: cannot open the log file: {exc.strerror or exc}") from None
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def reopen(path: str) -> None:
    try:
        open_log(path)
    except UisgeError:
        pass  # keep writing where we were


def rotate_if_big(path: str, maxsize: int) -> bool:
    """Rename the log aside when it passed `maxsize` bytes and reopen; True when it rotated."""
    try:
        if os.fstat(2).st_size < maxsize:
            return False
        os.rename(path, f"{path}.{time.strftime('%Y%m%d%H%M%S')}")
    except OSError:
        return False
    reopen(path)
    return True
