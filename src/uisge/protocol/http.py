"""HTTP/1.1 request parsing, sans-IO: bytes in, finished requests out (each with its CGI environ), or a
RequestError.

Wraps httptools (llhttp, strict by default: no bare LF, no obs-fold, no CL+TE, no duplicate CL, token-
only names, no CR/LF/NUL in values) and adds the rules llhttp leaves to us: only `chunked` as transfer
coding (others 501), no TE on HTTP/1.0, only HTTP/1.0 and 1.1, `*` only for OPTIONS, no CONNECT, one
Host, head size limit (431), body limit (413).

The environ is built while parsing, as uWSGI's http parser does: headers become HTTP_* keys (duplicates
joined with ", ", names with `_` dropped unless allowed), PATH_INFO is percent-decoded with dot-segments
resolved, REQUEST_URI stays raw. This is the hot path of every HTTP request, so the callbacks do little
and look things up in caches. It must not import socket, os, select or time.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from uisge.errors import RequestError

# a generous allowance for the request line and separators on top of the counted bytes
_HEAD_SLACK = 32
_CACHE_MAX = 4096
_OWS = (b" ", b"\t")
# a path that needs no decoding or dot-segment work: PATH_INFO is REQUEST_URI as is
_PLAIN_PATH = re.compile(r"(?:/[^/?%#.][^/?%#]*)*/?")

# header name (bytes, as sent) -> environ key, or None for a name that never reaches the app
_KEYS: dict[bool, dict[bytes, str | None]] = {False: {}, True: {}}


def header_key(name: bytes, allow_underscore: bool) -> str | None:
    """The CGI key of a request header: `X-Real-IP` -> `HTTP_X_REAL_IP`; None when it is dropped."""
    keys = _KEYS[allow_underscore]
    if name in keys:
        return keys[name]
    text = name.decode("latin-1").upper()
    if "_" in text and not allow_underscore:
        key = None  # `X_Real_IP` would collide with `X-Real-IP` (gunicorn#2799 class): dropped
    elif text in ("CONTENT-TYPE", "CONTENT-LENGTH"):
        key = text.replace("-", "_")
    else:
        key = "HTTP_" + text.replace("-", "_")
    if len(keys) < _CACHE_MAX:
        keys[name] = key
    return key


def normalise_path(path: str) -> str:
    """Resolve `.`/`..` segments and collapse `//`, as uWSGI's http parser does."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    result = "/" + "/".join(out)
    if path.endswith(("/", "/.", "/..")) and result != "/":
        result += "/"
    return result


def path_info(target: bytes) -> tuple[str, str]:
    """(PATH_INFO, QUERY_STRING) of a request target."""
    if target[:1] != b"/" and target != b"*":  # absolute-form: keep the path
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    path, _, query = target.partition(b"?")
    if b"#" in path:
        path = path.partition(b"#")[0]
    text = unquote_to_bytes(path).decode("latin-1") if b"%" in path else path.decode("latin-1")
    if "/." in text or "//" in text:
        text = normalise_path(text)
    return text, query.decode("latin-1")


class HttpRequest:
    """One finished request: its environ (without wsgi.input) and what the writer needs to know.
    Fields that rarely change are class defaults, so a plain GET costs one assignment here."""

    method = b""
    version = "HTTP/1.1"
    body: list[bytes] | tuple = ()
    body_size = 0
    keep_alive = True
    head_size = 0
    upgrade = False
    chunked = False

    def __init__(self, env: dict[str, Any]) -> None:  # noqa: D107
        self.env = env


class HttpParser:
    """Feed bytes; collect finished requests in `done`; `in_head`/`in_body` say what is being read.

    `base` is the environ every request of the connection starts from (server and peer keys).
    """

    __slots__ = ("_parser", "_req", "_env", "_url", "_keys", "_allow", "base", "done", "max_head", "max_body",
                 "in_head", "in_body", "_head_bytes", "on_continue", "_raw")

    def __init__(self, max_head: int, max_body: int = 0, base: dict[str, Any] | None = None,
                 allow_underscore: bool = False) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._req: HttpRequest | None = None
        self._env: dict[str, Any] = {}
        self._url = b""
        self._keys = _KEYS[allow_underscore]
        self._allow = allow_underscore
        self.base = base if base is not None else {}
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
        self._env = env = self.base.copy()
        self._req = HttpRequest(env)
        self._url = b""
        self._head_bytes = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:
            return  # a trailer field: never merged into the request's headers
        if value[-1:] in _OWS:
            value = value.rstrip(b" \t")  # optional whitespace, trimmed byte-wise (never str.strip())
        self._head_bytes += len(name) + len(value) + 4
        key = self._keys.get(name)
        if key is None:
            key = header_key(name, self._allow)
            if key is None:
                return
        env = self._env
        if key in env:
            if key == "HTTP_HOST":
                raise RequestError(400, "more than one Host header")
            env[key] = env[key] + ", " + value.decode("latin-1")
        else:
            env[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        req = self._req
        env = self._env
        p = self._parser
        target = self._url
        size = self._head_bytes + len(target)
        if size > self.max_head:
            raise RequestError(431, f"request header block larger than buffer-size ({self.max_head} bytes)")
        req.head_size = size + _HEAD_SLACK
        version = p.get_http_version()
        if version == "1.1":
            protocol = "HTTP/1.1"
        elif version == "1.0":
            protocol = req.version = "HTTP/1.0"
        else:
            raise RequestError(505, f"HTTP version {version} is not supported")
        req.method = method = p.get_method()
        req.keep_alive = p.should_keep_alive()
        if target[:1] != b"/" or method == b"CONNECT":
            self._check_target(method, target)
        uri = target.decode("latin-1")
        env["REQUEST_METHOD"] = method.decode("latin-1")
        env["REQUEST_URI"] = uri
        if _PLAIN_PATH.fullmatch(uri):
            env["PATH_INFO"] = uri
            env["QUERY_STRING"] = ""
        else:
            env["PATH_INFO"], env["QUERY_STRING"] = path_info(target)
        env["SERVER_PROTOCOL"] = protocol
        if "HTTP_TRANSFER_ENCODING" in env:
            self._check_te(req, env["HTTP_TRANSFER_ENCODING"])
        if "HTTP_EXPECT" in env and env["HTTP_EXPECT"].lower() == "100-continue" and self.on_continue:
            self.on_continue()
        if self.max_body and "CONTENT_LENGTH" in env and int(env["CONTENT_LENGTH"]) > self.max_body:
            raise RequestError(413, f"request body of {int(env['CONTENT_LENGTH'])} bytes is larger than "
                                    f"limit-post ({self.max_body} bytes)")
        self.in_head = False
        self.in_body = True
        self._raw = 0

    @staticmethod
    def _check_target(method: bytes, target: bytes) -> None:
        if method == b"CONNECT":
            raise RequestError(501, "CONNECT is not supported")
        if target == b"*":
            if method != b"OPTIONS":
                raise RequestError(400, "request target * is only allowed with OPTIONS")
        elif not target.startswith((b"http://", b"https://")):
            raise RequestError(400, "request target must be a path")

    def _check_te(self, req: HttpRequest, value: str) -> None:
        codings = [c.strip(" \t").lower() for c in value.split(",")]
        if codings != ["chunked"]:
            if any(c != "chunked" for c in codings):
                raise RequestError(501, f"transfer coding {value!r} is not supported (only chunked)")
            raise RequestError(400, "chunked given more than once in Transfer-Encoding")
        if req.version == "HTTP/1.0":
            raise RequestError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        req.chunked = True

    def on_body(self, body: bytes) -> None:
        req = self._req
        if req.body_size:
            req.body.append(body)
        else:
            req.body = [body]
        req.body_size += len(body)
        if self.max_body and req.body_size > self.max_body:
            raise RequestError(413, f"request body larger than limit-post ({self.max_body} bytes)")

    def on_message_complete(self) -> None:
        self.in_body = False
        self._raw = 0
        if self._req.chunked:  # the app sees a de-chunked body of known length
            self._env["CONTENT_LENGTH"] = str(self._req.body_size)
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
