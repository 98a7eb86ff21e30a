"""HTTP/1.1 request parsing, sans-IO: bytes in, `HttpRequest` objects out, or a RequestError.

Wraps httptools (llhttp, strict by default: no bare LF, no obs-fold, no CL+TE, no duplicate CL, token-
only names, no CR/LF/NUL in values) and adds the rules llhttp leaves to us: only `chunked` as transfer
coding (others 501), no TE on HTTP/1.0, only HTTP/1.0 and 1.1, `*` only for OPTIONS, no CONNECT,
head size limit (431), body limit (413). It must not import socket, os, select or time.
"""

from __future__ import annotations

import httptools

from uisge.errors import RequestError

_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# a generous allowance for the request line and separators on top of the counted bytes
_HEAD_SLACK = 32


class HttpRequest:
    __slots__ = ("method", "target", "version", "headers", "body", "body_size", "chunked", "keep_alive",
                 "expect_continue", "head_size", "upgrade")

    def __init__(self) -> None:  # noqa: D107
        self.method = b""
        self.target = b""
        self.version = "HTTP/1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.head_size = 0
        self.upgrade = False


class HttpParser:
    """Feed bytes; collect finished requests in `done`; `in_head` says a head is being read."""

    __slots__ = ("_parser", "_req", "done", "max_head", "max_body", "in_head", "in_body", "_head_bytes",
                 "on_continue", "_raw")

    def __init__(self, max_head: int, max_body: int = 0) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._req: HttpRequest | None = None
        self.done: list[HttpRequest] = []
        self.max_head = max_head
        self.max_body = max_body
        self.in_head = False
        self.in_body = False
        self._head_bytes = 0
        self.on_continue = None  # called when a request asks for 100-continue
        self._raw = 0  # bytes received while no head was complete (bounds unterminated heads)

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self._req = HttpRequest()
        self.in_head = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        req = self._req
        req.target += url
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:
            return  # a trailer field: never merged into the request's headers
        if value[-1:] in (b" ", b"\t"):
            value = value.rstrip(b" \t")  # optional whitespace, trimmed byte-wise (never str.strip())
        self._req.headers.append((name, value))
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self.max_head:
            raise RequestError(431, f"request header block larger than buffer-size ({self.max_head} bytes)")

    def on_headers_complete(self) -> None:
        req = self._req
        p = self._parser
        req.head_size = self._head_bytes + _HEAD_SLACK
        if req.head_size > self.max_head + _HEAD_SLACK:
            raise RequestError(431, f"request header block larger than buffer-size ({self.max_head} bytes)")
        version = p.get_http_version()
        if version == "1.1":
            req.version = "HTTP/1.1"
        elif version == "1.0":
            req.version = "HTTP/1.0"
        else:
            raise RequestError(505, f"HTTP version {version} is not supported")
        req.method = method = p.get_method()
        req.keep_alive = p.should_keep_alive()
        target = req.target
        if target == b"*" and method != b"OPTIONS":
            raise RequestError(400, "request target * is only allowed with OPTIONS")
        if method == b"CONNECT":
            raise RequestError(501, "CONNECT is not supported")
        if target[:1] != b"/" and target != b"*" and not target.startswith((b"http://", b"https://")):
            raise RequestError(400, "request target must be a path")
        hosts = 0
        for name, value in req.headers:
            if len(name) == 4 and name.lower() == b"host":
                hosts += 1
                if hosts > 1:
                    raise RequestError(400, "more than one Host header")
            elif len(name) == 17 and name.lower() == b"transfer-encoding":
                self._check_te(req, value)
            elif len(name) == 6 and name.lower() == b"expect":
                if value.lower() == b"100-continue":
                    req.expect_continue = True
        if req.chunked and req.version == "HTTP/1.0":
            raise RequestError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if self.max_body:
            for name, value in req.headers:
                if len(name) == 14 and name.lower() == b"content-length" and int(value) > self.max_body:
                    raise RequestError(413, f"request body of {int(value)} bytes is larger than limit-post "
                                            f"({self.max_body} bytes)")
        self.in_head = False
        self.in_body = True
        self._raw = 0
        if req.expect_continue and self.on_continue is not None:
            self.on_continue()

    @staticmethod
    def _check_te(req: HttpRequest, value: bytes) -> None:
        codings = [c.strip(b" \t").lower() for c in value.split(b",")]
        if req.chunked or codings != [b"chunked"]:
            if any(c != b"chunked" for c in codings):
                raise RequestError(501, f"transfer coding {value.decode('latin-1')!r} is not supported "
                                        f"(only chunked)")
            raise RequestError(400, "chunked given more than once in Transfer-Encoding")
        req.chunked = True

    def on_body(self, body: bytes) -> None:
        req = self._req
        req.body.append(body)
        req.body_size += len(body)
        if self.max_body and req.body_size > self.max_body:
            raise RequestError(413, f"request body larger than limit-post ({self.max_body} bytes)")

    def on_message_complete(self) -> None:
        self.in_body = False
        self._raw = 0
        self.done.append(self._req)
        self._req = None

    # -- feeding
    def feed(self, data: bytes) -> None:
        """Parse `data`; finished requests go to `done`. Raises RequestError for a bad request."""
        if not self.in_body:
            self._raw += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade (e.g. websocket) is not offered over WSGI: serve it as a plain request, then close.
            req = self._req
            if req is not None:
                req.upgrade = True
                req.keep_alive = False
                self.in_head = self.in_body = False
                self.done.append(req)
                self._req = None
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, RequestError):
                raise cause from None
            raise
        except httptools.HttpParserInvalidMethodError as exc:
            raise RequestError(400, f"invalid method ({exc})") from None
        except httptools.HttpParserInvalidURLError as exc:
            raise RequestError(400, f"invalid request target ({exc})") from None
        except httptools.HttpParserError as exc:
            if self.done and "after `Connection: close`" in str(exc):
                return  # the connection closes after the last request anyway; the rest is discarded
            raise RequestError(400, f"malformed request: {exc}") from None
        if self.in_head and self._raw > self.max_head + 4 * _HEAD_SLACK:
            raise RequestError(431, f"request header block larger than buffer-size ({self.max_head} bytes)")
