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
    return opts.daemonize or opts.daemonize2 or opts.logto or opts.logto2 or logger(opts.logger, "logger")[0]


def early_path(opts) -> str | None:
    """The log file opened before privileges are dropped; `logto2` alone is opened after (server.py)."""
    return opts.daemonize or opts.daemonize2 or opts.logto or logger(opts.logger, "logger")[0]


def maxsize(opts) -> int:
    """log-maxsize, or the `maxsize=` of a `logger = file:logfile=...,maxsize=N`."""
    return opts.log_maxsize or logger(opts.logger, "logger")[1]


def logger(values: tuple[str, ...], option: str) -> tuple[str | None, int]:
    """What uWSGI's `logger` / `req-logger` values ask of uisge: (the file to log to, or None for stderr as
    without them; its maxsize, 0 if none). UisgeError, naming the value, for what uisge does not do."""
    path, size = None, 0
    if len(values) > 1:
        raise UisgeError(f"{option} is given {len(values)} times ({', '.join(values)}): uisge writes one log; keep "
                         f"one `{option} = file:PATH` (or stdio)")
    for value in values:
        spec = value.strip()
        name, space, rest = spec.partition(" ")
        if space and ":" not in name:  # uWSGI: `[name ]plugin[:args]`
            raise UisgeError(f"{option} = {value}: named loggers feed log-route, which uisge does not have; write "
                             f"`{option} = file:PATH` or `{option} = stdio`")
        kind, _, args = spec.partition(":")
        if kind == "stdio":
            continue
        if kind != "file":
            raise UisgeError(f"{option} = {value}: the {kind} logger is not offered by uisge; log to a file "
                             f"(`{option} = file:PATH`) or to stderr and let journald or syslog collect it")
        if not args:
            raise UisgeError(f"{option} = {value}: the file logger needs a path: `{option} = file:/var/log/app.log`")
        if not args.startswith("logfile="):
            path = args
            continue
        for item in args.split(","):
            key, _, text = item.partition("=")
            if key == "logfile" and text:
                path = text
            elif key == "maxsize" and text.isdigit() and option == "logger":
                size = int(text)
            else:
                raise UisgeError(f"{option} = {value}: `{item}` is not something uisge's file logger takes "
                                 f"(logfile=PATH{', maxsize=BYTES' if option == 'logger' else ''})")
    return path, size


def check_loggers(opts) -> None:
    """`logger` and `req-logger` as uisge can honour them, or UisgeError saying why not."""
    path, _ = logger(opts.logger, "logger")
    logger(opts.req_logger, "req-logger")
    if path:
        other = next((f"{name} = {getattr(opts, name)}" for name in ("daemonize", "daemonize2", "logto", "logto2")
                      if getattr(opts, name)), None)
        if other:
            raise UisgeError(f"logger = file:{path} and {other} both name the log file; keep one")


request_fd: list[int] = [2]  # where request lines go: `req-logger = file:PATH` opens it (server.py)


def open_request_log(path: str) -> None:
    """`req-logger = file:PATH`: request lines go there (opened before privileges are dropped, inherited by
    the workers); server messages and errors stay on the main log."""
    try:
        request_fd[0] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    except OSError as exc:
        raise UisgeError(f"req-logger = file:{path}: cannot open the file: {exc.strerror or exc}") from None


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
