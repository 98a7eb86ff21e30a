"""One error family. A RequestError carries the HTTP status to answer with and a reason for the log.

No I/O and no formatting of responses here (protocol/response.py turns a RequestError into bytes).
"""

from __future__ import annotations


class UisgeError(Exception):
    """Base of every error uisge raises on purpose."""


class RequestError(UisgeError):
    """A request that cannot be served: answered with `status` and `Connection: close`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class AppLoadError(UisgeError):
    """The WSGI app could not be found or imported; `detail` is the traceback text, if any."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class ClientGone(UisgeError):
    """The client closed the connection, or made no progress reading the response within socket-timeout."""
