"""HTTP/1.1 request parsing, sans-IO: bytes in, events out (protocol/events.py): a RequestHead with the
raw header list, body data, END, or a Reject with its status.

Wraps httptools (llhttp, strict by default: no bare LF, no obs-fold, no CL+TE, no duplicate CL, token-
only names, no CR/LF/NUL in values) and adds the rules llhttp leaves to us: only `chunked` as transfer
coding (others 501), no TE on HTTP/1.0, only HTTP/1.0 and 1.1, `*` only for OPTIONS, no CONNECT, one
Host, head size limit (431), body limit (413), chunk headers (extensions) of at most a few KiB (400).

The environ is not built here (wsgi/environ.py does that from the head). This is the hot path of
every HTTP request, so the callbacks do little. It must not import socket, os, select or time.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import httptools

from uisge.protocol.events import END, Reject, RequestHead

# a generous allowance for the request line and separators on top of the counted bytes
_HEAD_SLACK = 32
_OWS = (b" ", b"\t")
# chunked bodies are fed in slices of this size, so a chunk header (size line plus extensions) that runs
# past CHUNK_HEAD_MAX bytes with no chunk data is seen and refused
_SLICE = 4096
CHUNK_HEAD_MAX = 4096

# what a header name is to the parser: most are plain; these few are checked here
_PLAIN, _HOST, _TE, _EXPECT, _CL = 0, 1, 2, 3, 4
_KIND_OF = {b"host": _HOST, b"transfer-encoding": _TE, b"expect": _EXPECT, b"content-length": _CL}
_KINDS: dict[bytes, int] = {}
_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}
_CACHE_MAX = 4096


def _kind(name: bytes) -> int:
    kind = _KIND_OF.get(name.lower(), _PLAIN)
    if len(_KINDS) < _CACHE_MAX:
        _KINDS[name] = kind
    return kind


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: `.` and `..` segments resolved, never above the root; repeated slashes kept
    (`/a//b/../c` is `/a//c`), as apps and routers that rely on them expect."""
    segments = path.split("/")
    out: list[str] = []
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if seg == ".":
            if i == last:
                out.append("")
            continue
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if i == last:
                out.append("")
            continue
        out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def path_info(target: bytes) -> tuple[str, str]:
    """(PATH_INFO, QUERY_STRING) of a request target: percent-decoded, dot-segments resolved."""
    if target[:1] != b"/" and target != b"*":  # absolute-form: keep the path
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    if b"#" in target:
        target = target.partition(b"#")[0]  # a fragment is never part of the path or the query
    path, _, query = target.partition(b"?")
    text = unquote_to_bytes(path).decode("latin-1") if b"%" in path else path.decode("latin-1")
    if "/." in text:
        text = remove_dot_segments(text)
    return text, query.decode("latin-1")


class _Stop(Exception):
    """Raised inside a callback to abort feed_data with a Reject."""

    def __init__(self, reject: Reject) -> None:
        self.reject = reject


class HttpParser:
    """feed(data) -> events. `in_head`/`in_body` say what is being read (for timeouts).

    After a Reject the parser is dead: later feeds return nothing.
    """

    __slots__ = ("_parser", "_head", "_headers", "_url", "_events", "max_head", "max_body", "in_head",
                 "in_body", "_head_bytes", "_raw", "_host", "_te", "_expect", "_body_size", "_chunked",
                 "_since_chunk", "dead", "_done", "_cl", "_version", "upgrade_rest")

    def __init__(self, max_head: int, max_body: int = 0) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._head: RequestHead | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._url = b""
        self._events: list = []
        self.max_head = max_head
        self.max_body = max_body
        self.in_head = False
        self.in_body = False
        self._head_bytes = 0
        self._raw = 0  # bytes received while no head was complete (bounds unterminated heads)
        self._host = False
        self._te: bytes | None = None
        self._cl: bytes | None = None
        self._expect = False
        self._body_size = 0
        self._chunked = False
        self._since_chunk = 0  # chunked-body bytes fed since the last chunk callback
        self._done = 0  # requests completed so far
        self.dead = False
        self._version: str | None = None  # read off the request line when a feed starts a head
        self.upgrade_rest = b""  # bytes received after an Upgrade request's head (the new protocol's)

    def release(self) -> None:
        """The connection is closed: drop llhttp, which holds this object's callbacks (a reference cycle
        the garbage collector would otherwise have to find, once per connection)."""
        self._parser = None
        self.dead = True

    # -- httptools callbacks (no on_message_begin: a message begins with its URL, one callback fewer)
    def on_url(self, url: bytes) -> None:
        if self.in_head:
            self._url += url  # the target arrived in pieces
            return
        self.in_head = True  # a new message: its own state
        self._url = url
        self._headers = []
        if self._done:
            self._head_bytes = self._body_size = 0
            self._host = self._expect = self._chunked = False
            self._te = self._cl = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if value[-1:] in _OWS:
            value = value.rstrip(b" \t")  # optional whitespace, trimmed byte-wise (never str.strip())
        self._head_bytes += len(name) + len(value) + 4
        if self.in_body:  # a trailer field: counted against buffer-size, never merged into the headers
            if self._head_bytes > self.max_head:
                raise _Stop(Reject(431, f"request trailers larger than buffer-size ({self.max_head} bytes)"))
            return
        kind = _KINDS.get(name)
        if kind is None:
            kind = _kind(name)
        if kind:
            if kind == _HOST:
                if self._host:
                    raise _Stop(Reject(400, "more than one Host header"))
                self._host = True
            elif kind == _TE:
                self._te = value if self._te is None else self._te + b"," + value
            elif kind == _EXPECT:
                self._expect = value.lower() == b"100-continue"
            else:
                self._cl = value
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        p = self._parser
        target = self._url
        size = self._head_bytes + len(target)
        if size > self.max_head:
            raise _Stop(Reject(431, f"request header block larger than buffer-size ({self.max_head} bytes)"))
        version = self._version
        if version is None:
            version = p.get_http_version()
            if version == "1.1":
                version = "HTTP/1.1"
            elif version == "1.0":
                version = "HTTP/1.0"
            else:
                raise _Stop(Reject(505, f"HTTP version {version} is not supported"))
        else:
            self._version = None
        method = p.get_method()
        if target[:1] != b"/" or method == b"CONNECT":
            self._check_target(method, target)
        length = 0
        if self._te is not None:
            self._check_te(self._te, version)
            length = -1
            self._chunked = True
        elif self._cl is not None:
            length = int(self._cl)  # llhttp has checked it: digits only, one value
        if self.max_body and length > self.max_body:
            raise _Stop(Reject(413, f"request body of {length} bytes is larger than limit-post "
                                    f"({self.max_body} bytes)"))
        head = RequestHead("http", method, target, version, self._headers, p.should_keep_alive(), length,
                           size + _HEAD_SLACK, len(self._headers))
        self._head = head
        if self._expect:
            head.expect_continue = True
        self._events.append(head)
        self.in_head = False
        self.in_body = True
        self._raw = 0
        self._since_chunk = 0

    @staticmethod
    def _check_target(method: bytes, target: bytes) -> None:
        if method == b"CONNECT":
            raise _Stop(Reject(501, "CONNECT is not supported"))
        if target == b"*":
            if method != b"OPTIONS":
                raise _Stop(Reject(400, "request target * is only allowed with OPTIONS"))
        elif not target.startswith((b"http://", b"https://")):
            raise _Stop(Reject(400, "request target must be a path"))

    @staticmethod
    def _check_te(value: bytes, version: str) -> None:
        codings = [c.strip(b" \t").lower() for c in value.split(b",")]
        if codings != [b"chunked"]:
            if any(c != b"chunked" for c in codings):
                raise _Stop(Reject(501, f"transfer coding {value.decode('latin-1')!r} is not supported "
                                        f"(only chunked)"))
            raise _Stop(Reject(400, "chunked given more than once in Transfer-Encoding"))
        if version == "HTTP/1.0":
            raise _Stop(Reject(400, "Transfer-Encoding is not allowed in HTTP/1.0"))

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        self._since_chunk = 0
        if self.max_body and self._body_size > self.max_body:
            raise _Stop(Reject(413, f"request body larger than limit-post ({self.max_body} bytes)"))
        self._events.append(body)

    def on_chunk_complete(self) -> None:
        self._since_chunk = 0

    def on_message_complete(self) -> None:
        self.in_body = False
        self._raw = 0
        self._done += 1
        if self._chunked:
            self._head.content_length = self._body_size  # the app sees a de-chunked body of known length
        self._events.append(END)
        self._head = None

    # -- feeding
    def feed(self, data: bytes) -> list:
        """Parse `data`; returns the events it completed (the list is reused: consume it before the
        next feed)."""
        events = self._events
        events.clear()
        if self.dead:
            return events
        if not self.in_body:
            if not self.in_head:
                # a head starts at data[0]: once llhttp accepts its request line, the 8 bytes before the
                # first CRLF are its version, cheaper to read here than to ask the parser for
                end = data.find(b"\r\n", 0, 8192)
                if end >= 8:
                    self._version = _VERSIONS.get(data[end - 8:end])
            self._raw += len(data)
        at = 0
        try:
            if len(data) <= _SLICE or (self.in_body and not self._chunked):
                self._parser.feed_data(data)
                if self._chunked and self.in_body:
                    self._check_chunk_head(len(data))
            else:
                for at in range(0, len(data), _SLICE):
                    self._parser.feed_data(data[at:at + _SLICE])
                    if self._chunked and self.in_body:
                        self._check_chunk_head(min(_SLICE, len(data) - at))
        except httptools.HttpParserUpgrade as exc:
            self._upgrade(data[at + exc.args[0]:] if exc.args else b"")
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Stop):
                self._reject(cause.reject)
            else:
                raise
        except _Stop as stop:
            self._reject(stop.reject)
        except httptools.HttpParserInvalidMethodError as exc:
            self._reject(Reject(400, f"invalid method ({exc})"))
        except httptools.HttpParserInvalidURLError as exc:
            self._reject(Reject(400, f"invalid request target ({exc})"))
        except httptools.HttpParserError as exc:
            if self._done and "after `Connection: close`" in str(exc):
                self.dead = True  # the connection closes after the last request anyway; the rest is discarded
            else:
                self._reject(Reject(400, f"malformed request: {exc}"))
        if self.in_head and self._raw > self.max_head + 4 * _HEAD_SLACK:
            self._reject(Reject(431, f"request header block larger than buffer-size ({self.max_head} bytes)"))
        return events

    def _check_chunk_head(self, fed: int) -> None:
        self._since_chunk += fed
        if self._since_chunk > CHUNK_HEAD_MAX + _SLICE:
            raise _Stop(Reject(400, f"a chunk header (size line and extensions) is longer than "
                                    f"{CHUNK_HEAD_MAX} bytes"))

    def _upgrade(self, rest: bytes) -> None:
        """An Upgrade request (websocket, h2c): its head is complete and the parser stops; what follows
        the head (`rest`) belongs to the new protocol. A WSGI app is served it as a plain request whose
        body is empty, then the connection closes; an ASGI app may take a websocket over."""
        self.upgrade_rest = rest
        head = self._head
        if head is None and self._events and self._events[-1] is END:
            # llhttp completed the message before it stopped (a request without a body): mark its head
            head = next(ev for ev in reversed(self._events) if ev.__class__ is RequestHead)
            head.upgrade = True
            head.keep_alive = False
        elif head is not None:
            head.upgrade = True
            head.keep_alive = False
            self.in_head = self.in_body = False
            if head not in self._events:
                self._events.append(head)
            self._events.append(END)
            self._head = None
        self.dead = True

    def _reject(self, reject: Reject) -> None:
        self.dead = True
        self.in_head = self.in_body = False
        self._events.append(reject)
