"""`py-tracebacker = PREFIX`: each worker serves the stacks of its Python threads on the unix socket
PREFIX<worker id>, in uWSGI's format, to whoever connects (`uisge --connect-and-read /tmp/tb1`, or
uWSGI's own). A daemon thread accepts and answers; like uWSGI's it needs the GIL, so a worker stuck
in C code that holds it answers once it lets go (harakiri dumps such stacks from C, with faulthandler).

Must not touch client connections or the event loop.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType

HEADER = b"*** uWSGI Python tracebacker output ***\n\n"


def render(frames: dict[int, FrameType], names: dict[int, str]) -> bytes:
    """uWSGI's lines: one per stack entry, oldest call first, thread by thread."""
    out = [HEADER]
    for ident, frame in frames.items():
        name = names.get(ident, "<UnnamedPythonThread>")
        for entry in traceback.extract_stack(frame):
            line = f" line = {entry.line}" if entry.line else ""
            out.append(f"thread_id = {name} filename = {entry.filename} lineno = {entry.lineno} "
                       f"function = {entry.name}{line}\n".encode("utf-8", "replace"))
    return b"".join(out)


def serve(prefix: str, worker_id: int, say: Callable[[str], None]) -> threading.Thread | None:
    """Bind PREFIX<worker_id> and answer each connection with this process's stacks, from a daemon thread."""
    path = f"{prefix}{worker_id}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by the worker this one replaces
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(path)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        say(f"py-tracebacker: cannot listen on {path}: {exc.strerror}; worker {worker_id} serves no stacks")
        return None

    def answer() -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            with client:
                names = {t.ident: t.name for t in threading.enumerate()}
                stacks = render(sys._current_frames(), names)
                with contextlib.suppress(OSError):
                    client.settimeout(5)
                    client.sendall(stacks)

    thread = threading.Thread(target=answer, name="uWSGITraceBacker", daemon=True)
    thread.start()
    say(f"python tracebacker for worker {worker_id} available on {path}")
    return thread
