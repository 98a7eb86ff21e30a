"""The request vocabulary shared by every protocol parser (HTTP and uwsgi): a request head, body data,
the end of the body, or a rejection with its status.

A parser's feed(data) returns a list of these in order; body data is a plain `bytes` object (no
wrapper, the most frequent event costs nothing extra). Pure data: no I/O, no environ building (that
is wsgi/environ.py's job, from a RequestHead).
"""

from __future__ import annotations


class RequestHead:
    """A request's head as received.

    HTTP: `headers` is the raw (name, value) list as sent (OWS trimmed), `target` the raw request
    target. uwsgi: `vars` is the var block as nginx sent it (`headers` stays empty) and `modifier1`
    says how to treat it. `content_length` is -1 for a chunked body; `size` is the head's size in
    bytes (what the request log calls "vars in N bytes"); `count` the number of headers or vars.
    """

    __slots__ = ("proto", "method", "target", "version", "headers", "vars", "keep_alive", "content_length",
                 "size", "count", "modifier1", "modifier2", "upgrade", "expect_continue", "chunked")

    def __init__(self, proto: str, method: bytes, target: bytes, version: str, headers: list,
                 keep_alive: bool, content_length: int, size: int, count: int) -> None:
        self.proto = proto
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.vars: dict[str, str] | None = None
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.size = size
        self.count = count
        self.modifier1 = 0
        self.modifier2 = 0
        self.upgrade = False
        self.expect_continue = False  # HTTP `Expect: 100-continue`
        self.chunked = content_length < 0  # HTTP chunked: content_length is set when the body ends


class EndOfBody:
    """The request's body is complete (a request without a body sends this right after its head)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = EndOfBody()


class Reject:
    """The bytes cannot be served: answer `status` (0: close without an answer, as uWSGI does for some
    uwsgi packets) and close the connection. `reason` is for the log and the error body."""

    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"Reject({self.status}, {self.reason!r})"
