"""systemd integration: sd_notify messages (READY=1, RELOADING=1, STOPPING=1, STATUS=...) when
$NOTIFY_SOCKET is set, and the sockets systemd passes with $LISTEN_FDS/$LISTEN_PID (socket activation).

Silent when not under systemd. Does not bind or accept anything itself.
"""

from __future__ import annotations

import os
import socket

from uisge.errors import UisgeError

LISTEN_FDS_START = 3


def notify(*fields: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(fields).encode(), address)
    except OSError:
        pass  # systemd gone or not listening: nothing to tell


def activated_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed us (socket activation), or none."""
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
        pid = int(os.environ.get("LISTEN_PID", "0"))
    except ValueError:
        return []
    if count <= 0 or pid != os.getpid():
        return []
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our children
    out = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + count):
        try:
            out.append(socket.socket(fileno=fd))
        except OSError as exc:
            raise UisgeError(f"LISTEN_FDS={count} (socket activation) but fd {fd} is not a socket: {exc.strerror}; "
                             f"check the .socket unit") from None
    return out
