"""accept4() for listeners whose peer address nobody reads (unix sockets: nginx's `uwsgi_pass unix:`).

One system call gives a non-blocking, close-on-exec descriptor, where `socket._accept()` then `fcntl()`
take two and build an address tuple that is thrown away. Behind nginx every request is a new
connection, so this is paid per request. Called through ctypes without releasing the GIL: the listener
is non-blocking, so the call never waits.

Must not be used for TCP listeners (their peer is REMOTE_ADDR). When libc has no accept4 (not Linux),
`ACCEPT4` is None and the caller keeps the portable path.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

# SOCK_NONBLOCK and SOCK_CLOEXEC have the values of O_NONBLOCK and O_CLOEXEC on Linux
FLAGS = os.O_NONBLOCK | os.O_CLOEXEC


def _load() -> tuple[Callable[..., int] | None, Callable[[], int]]:
    try:
        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL is kept over the (non-blocking) call
        return libc.accept4, ctypes.get_errno  # restype int; None is passed as a NULL address
    except (OSError, AttributeError):
        return None, ctypes.get_errno


ACCEPT4, get_errno = _load()
