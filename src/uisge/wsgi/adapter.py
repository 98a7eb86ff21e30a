"""One WSGI response (PEP 3333) turned into bytes in a connection's output buffer, pulled as the
buffer drains.

start_response may be called until the first non-empty body bytestring exists (so generators that
call it inside the iterable work), again with exc_info before the head is committed; the head is
committed with the first non-empty chunk, or at the end. write() works (and is the only place that may
wait for the socket). close() on the iterable is called exactly once. wsgi.file_wrapper bodies go out
with sendfile(). Framing: Content-Length when the body is known up front (one-element or all-bytes
lists, file_wrapper), chunked otherwise on HTTP/1.1, close-delimited otherwise; HEAD, 1xx, 204 and 304
without a body; header names and values checked (CR/LF/NUL never emitted: 500).

uwsgi responses are raw HTTP with the request's SERVER_PROTOCOL and no added headers, as uWSGI sends
them (`http` is False). Nothing here touches a socket except through the output buffer it is given,
and nothing here knows which thread runs it.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from typing import Any, Callable

from uisge.errors import ClientGone
from uisge.protocol.status import reason as reason_phrase

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")

# What a response header is to the writer: most are sent as given; these few are framing.
PLAIN, CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING, HOP_BY_HOP = 0, 1, 2, 3, 4
_KINDS = {"content-length": CONTENT_LENGTH, "connection": CONNECTION, "transfer-encoding": TRANSFER_ENCODING,
          "keep-alive": HOP_BY_HOP, "upgrade": HOP_BY_HOP, "te": HOP_BY_HOP, "trailer": HOP_BY_HOP,
          "proxy-connection": HOP_BY_HOP}

# Apps send the same few headers again and again: each distinct (name, value) tuple is validated and
# encoded once, then found here. Bounded in count and in value length, so it cannot grow without end; when
# full it starts again, so one-off values (ETags, cookies) cannot keep the common headers out.
_HEADER_CACHE: dict[tuple[str, str], tuple[int, bytes, int]] = {}
_STATUS_CACHE: dict[str, tuple[int, bytes]] = {}
_PROTOCOLS = {"HTTP/1.1": b"HTTP/1.1 ", "HTTP/1.0": b"HTTP/1.0 "}
_CACHE_MAX = 4096
_CACHE_VALUE_MAX = 256
_JOIN_MAX = 16384  # a body piece up to this size is copied next to its framing; a bigger one is sent as is


class AppError(Exception):
    """The app broke a WSGI rule (bad status, bad header, body before start_response); the message says which."""


def check_status(status: Any) -> tuple[int, bytes]:
    """(code, encoded status) for a WSGI status string, or AppError saying what is wrong with it."""
    if type(status) is not str:
        raise AppError(f"status must be a str, got {type(status).__name__}: {status!r}")
    code = status[:3]
    if len(status) < 4 or status[3] != " " or not code.isdigit() or _BAD_VALUE.search(status):
        raise AppError(f"status {status!r} is not '<3 digits> <reason>' on one line")
    try:
        entry = (int(code), status.encode("latin-1"))
    except UnicodeEncodeError:
        raise AppError(f"status {status!r} must be latin-1 text") from None
    if len(_STATUS_CACHE) < _CACHE_MAX:
        _STATUS_CACHE[status] = entry
    return entry


def check_header(item: Any) -> tuple[int, bytes, int]:
    """(kind, encoded line, content length or -1) for one response header, or AppError."""
    if type(item) is not tuple or len(item) != 2:
        raise AppError(f"header {item!r} is not a (name, value) tuple")
    name, value = item
    if type(name) is not str or not _TOKEN.fullmatch(name):
        raise AppError(f"header name {name!r} is not a valid token")
    if type(value) is not str:
        raise AppError(f"value of header {name} must be a str, got {type(value).__name__}")
    if _BAD_VALUE.search(value):
        raise AppError(f"value of header {name} contains CR, LF or NUL: {value!r}")
    kind = _KINDS.get(name.lower(), PLAIN)
    length = -1
    if kind == CONTENT_LENGTH:
        if not value.isdigit() or not value.isascii():
            raise AppError(f"Content-Length {value!r} is not a number")
        length = int(value)
    try:
        entry = (kind, f"{name}: {value}\r\n".encode("latin-1"), length)
    except UnicodeEncodeError as exc:
        raise AppError(f"response header {name} must be latin-1 text: {exc}") from None
    if len(value) <= _CACHE_VALUE_MAX:
        if len(_HEADER_CACHE) >= _CACHE_MAX:
            _HEADER_CACHE.clear()  # full of one-off values (ETags, cookies): start again with what repeats now
        _HEADER_CACHE[item] = entry
    return entry


_ASGI_HEADER_CACHE: dict[tuple[bytes, bytes], tuple[int, bytes, int]] = {}
_ASGI_STATUS_CACHE: dict[int, tuple[int, bytes]] = {}


def check_asgi_status(status: Any) -> tuple[int, bytes]:
    if type(status) is not int or not 100 <= status <= 999:
        raise AppError(f"the ASGI status must be an int from 100 to 999, got {status!r}")
    entry = _ASGI_STATUS_CACHE[status] = check_status(f"{status} {reason_phrase(status)}")
    return entry


def check_asgi_header(item: Any) -> tuple[int, bytes, int]:
    """check_header() for an ASGI header: a (name, value) pair of bytes (a list is taken too)."""
    try:
        name, value = item
        key = (bytes(name), bytes(value))
    except (TypeError, ValueError):
        raise AppError(f"ASGI header {item!r} is not a (name, value) pair of bytes") from None
    entry = check_header((key[0].decode("latin-1"), key[1].decode("latin-1")))
    if len(key[1]) <= _CACHE_VALUE_MAX:
        if len(_ASGI_HEADER_CACHE) >= _CACHE_MAX:
            _ASGI_HEADER_CACHE.clear()
        _ASGI_HEADER_CACHE[key] = entry
    return entry


_date: list = [0, b""]  # [second, b"Date: ...\r\n"]


def http_date(now: float | None = None) -> bytes:
    """The Date header line for this second; the worker's loop calls it once per round, so a response
    reads `_date[1]` without asking the clock."""
    second = int(time.time() if now is None else now)
    if second != _date[0]:
        _date[1] = b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second)).encode() + b"\r\n"
        _date[0] = second
    return _date[1]


http_date()


def error_response(status: int, message: str, protocol: str = "HTTP/1.1") -> bytes:
    body = f"{status} {reason_phrase(status)}\n{message}\n".encode("utf-8", "replace")
    return (f"{protocol} {status} {reason_phrase(status)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode("latin-1") + http_date() + b"\r\n" + body


class FileWrapper:
    """wsgi.file_wrapper: iterates a file; the writer sends it with sendfile() when it can."""

    def __init__(self, filelike: Any, blksize: int = 65536, limit: int = -1) -> None:
        self.filelike = filelike
        self.blksize = blksize
        self.limit = limit  # bytes to send from the file's position; -1: to its end (uwsgi.sendfile's filesize)
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        left = self.limit
        while left:
            data = read(self.blksize if left < 0 else min(self.blksize, left))
            if not data:
                return
            if left > 0:
                left -= len(data)
            yield data


def _file_chunks(item: Any, rest) -> Any:
    """The bytes of a file or file_wrapper an app yielded among its chunks (read in blocks; a text-mode file
    gives its bytes, as uWSGI sends its descriptor), then the rest of the app's iterable; the file is closed."""
    wrapper = item if isinstance(item, FileWrapper) else FileWrapper(item)
    source = getattr(wrapper.filelike, "buffer", wrapper.filelike)  # TextIOWrapper -> its binary stream
    try:
        while True:
            block = source.read(wrapper.blksize)
            if not block:
                break
            yield block
    finally:
        close = getattr(wrapper.filelike, "close", None)
        if close is not None:
            close()
    yield from rest


class Response:
    """start_response, write() and the framing of one response, producing into `out` (worker/output.py).

    call() runs the app; pump() pulls the body while `out` holds less than `high` bytes; `done` is set once
    the last bytes are in `out`. Fields that rarely change are class defaults (cheaper per request).
    """

    status_code = 0
    status_bytes = b""
    lines: list[bytes] = []
    head_sent = False  # the head is committed (in the output buffer)
    started = False
    chunked = False
    content_length = -1
    body_sent = 0
    header_bytes = 0
    header_count = 0
    failed = False  # the app raised or broke a WSGI rule (counted as an exception in the stats)
    done = False
    called = False  # the app was called (or a prebuilt answer given): later steps pull the body
    iterator: Any = None
    result: Any = None
    closed = False
    sent_file = False  # the body went out with sendfile() (log-sendfile)

    # set once per worker and protocol by configured() (a subclass), never per request
    http = True  # False: a uwsgi response (raw, close-delimited, nothing added)
    extra_lines: list[bytes] = []  # add-header
    timeout = 60.0  # socket-timeout, for write()
    high = 1 << 18  # the output buffer's high-water mark
    log_error: Callable[[str], None] = staticmethod(print)

    def __init__(self, out, protocol: str, head_only: bool, keep_alive: bool) -> None:
        self.out = out
        self.protocol = protocol
        self.head_only = head_only
        self.keep_alive = keep_alive

    @classmethod
    def configured(cls, http: bool, extra_lines: list[bytes], timeout: float, high: int,
                   log_error: Callable[[str], None]) -> type[Response]:
        """A Response class with one worker's settings for one protocol."""
        return type(f"{'Http' if http else 'Uwsgi'}Response", (cls,), {
            "http": http, "extra_lines": extra_lines, "timeout": timeout, "high": high,
            "log_error": staticmethod(log_error)})

    @property
    def fd(self) -> int:  # the harakiri watchdog answers 504 on it directly
        return self.out.fd

    # -- PEP 3333
    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None):
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.started:
            raise AppError("start_response() called a second time without exc_info")
        try:
            self.status_code, self.status_bytes = _STATUS_CACHE[status]
        except (KeyError, TypeError):
            self.status_code, self.status_bytes = check_status(status)
        if type(headers) is not list:
            raise AppError(f"headers must be a list of (name, value) tuples, got {type(headers).__name__}")
        self._take_headers(headers, _HEADER_CACHE, check_header)
        self.started = True
        return self.write

    def start_asgi(self, status: Any, headers: Any) -> None:
        """ASGI's http.response.start: an int status and (name, value) byte pairs, checked (and cached) as
        WSGI's are, without going through str."""
        if self.started:
            raise AppError("http.response.start sent twice")
        try:
            self.status_code, self.status_bytes = _ASGI_STATUS_CACHE[status]
        except (KeyError, TypeError):
            self.status_code, self.status_bytes = check_asgi_status(status)
        self._take_headers(headers, _ASGI_HEADER_CACHE, check_asgi_header)
        self.started = True

    def _take_headers(self, headers: Any, cache: dict, check: Callable[[Any], tuple[int, bytes, int]]) -> None:
        lines = []
        self.content_length = -1
        for item in headers:
            try:
                kind, line, length = cache[item]
            except (KeyError, TypeError):  # not seen yet, or unhashable: the check says what is wrong
                kind, line, length = check(item)
            if kind:
                if kind == CONTENT_LENGTH:
                    self.content_length = length
                elif kind == TRANSFER_ENCODING:
                    continue  # the server frames the body itself (uwsgi responses are close-delimited)
                elif self.http:
                    if kind == CONNECTION and b"close" in line.lower():
                        self.keep_alive = False
                    continue  # hop-by-hop: the server's business, never passed from the app
            lines.append(line)
        self.lines = lines
        self.header_count = len(headers)

    def write(self, data: bytes) -> None:
        """PEP 3333's write(): the one place that may wait for the client (up to socket-timeout)."""
        if not self.started:
            raise AppError("write() called before start_response()")
        if type(data) is not bytes:
            data = self._bytes(data)
        self._emit(data)
        if self.out.size > self.high:
            self.out.drain(self.timeout)

    @staticmethod
    def _bytes(data: Any) -> bytes:
        """A body piece that is not bytes: any buffer (bytearray, memoryview, array) is taken, as uWSGI
        takes it; anything else (a str above all) is an AppError naming it."""
        if not isinstance(data, str):
            try:
                return memoryview(data).tobytes()
            except TypeError:
                pass
        raise AppError(f"the app gave a {type(data).__name__} where bytes are required: {data!r:.80}")

    # -- framing
    def _head(self, body_len: int | None) -> bytes:
        """The response head; body_len is the whole body's length when known before sending."""
        code = self.status_code
        no_body = code < 200 or code == 204 or code == 304  # never a body, never a length
        protocol = self.protocol
        parts = [_PROTOCOLS.get(protocol) or protocol.encode("latin-1") + b" ", self.status_bytes, b"\r\n"]
        parts += self.lines
        if self.http:
            if self.extra_lines:
                parts += self.extra_lines
            if self.content_length < 0 and not no_body:
                if body_len is not None:  # HEAD too: the length a GET would get
                    self.content_length = body_len
                    parts.append(b"Content-Length: %d\r\n" % body_len)
                elif self.head_only:
                    pass  # no body follows: no framing to announce
                elif protocol == "HTTP/1.1":
                    self.chunked = True
                    parts.append(b"Transfer-Encoding: chunked\r\n")
                else:
                    self.keep_alive = False
            if not self.keep_alive:
                parts.append(b"Connection: close\r\n")
            elif protocol == "HTTP/1.0":
                parts.append(b"Connection: keep-alive\r\n")
            parts.append(_date[1])
        parts.append(b"\r\n")
        head = b"".join(parts)
        self.header_bytes = len(head)
        self.head_sent = True
        if no_body:
            self.head_only = True
        return head

    def _clip(self, data: bytes) -> bytes:
        if self.content_length >= 0 and self.body_sent + len(data) > self.content_length:
            data = data[: max(0, self.content_length - self.body_sent)]
            self.keep_alive = False  # the app gave more than it promised: the rest is not sent
        return data

    def _emit(self, data: bytes) -> None:
        """One body bytestring from the app: commits the head with the first non-empty one."""
        if not data:
            return
        if not self.head_sent:
            if not self.started:
                raise AppError("the app produced body data before calling start_response()")
            head = self._head(None)
            if self.head_only:
                self.out.push(head)
                return
            if self.chunked:
                if len(data) <= _JOIN_MAX:
                    self.out.push(head + b"%x\r\n" % len(data) + data + b"\r\n")
                else:
                    self.out.push(head + b"%x\r\n" % len(data))
                    self.out.push(data)
                    self.out.push(b"\r\n")
            else:
                data = self._clip(data)
                if len(data) <= _JOIN_MAX:
                    self.out.push(head + data)
                else:
                    self.out.push(head)
                    self.out.push(data)
            self.body_sent += len(data)
            return
        if self.head_only:
            return
        if self.chunked:
            if len(data) <= _JOIN_MAX:
                self.out.push(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.out.push(b"%x\r\n" % len(data))
                self.out.push(data)
                self.out.push(b"\r\n")
        else:
            data = self._clip(data)
            if not data:
                return
            self.out.push(data)
        self.body_sent += len(data)

    def send_whole(self, body: bytes) -> None:
        """A response whose body is this one bytes object (the common `return [body]`)."""
        head = self._head(len(body))
        self.done = True
        if self.head_only:
            self.out.send_now(head)
        else:
            cl = self.content_length
            if cl >= 0 and cl != len(body):  # the app's Content-Length disagrees with what it gave
                body = body[:cl]
                self.keep_alive = False
            self.body_sent = len(body)
            if len(body) <= _JOIN_MAX:
                self.out.send_now(head + body)
            else:  # no copy of a big body: head and body leave in one writev()
                self.out.send_now_parts(head, body)

    def send_prebuilt(self, ready) -> None:
        """Send a static.Prebuilt answer: its header lines were checked when it was built."""
        self.called = True
        self.status_code, self.status_bytes = 200, b"200 OK"
        self.lines = ready.lines
        self.content_length = ready.content_length
        self.header_count = ready.header_count
        self.started = True
        self.send_whole(ready.body)

    def _finish(self) -> None:
        if not self.head_sent:
            if not self.started:
                raise AppError("the app returned without calling start_response()")
            self.out.push(self._head(0))
        elif self.chunked and not self.head_only:
            self.out.push(b"0\r\n\r\n")
        if self.content_length >= 0 and self.body_sent < self.content_length and not self.head_only:
            self.keep_alive = False  # the app promised more than it gave: the client must not wait
        self.done = True
        self.close_iterable()

    # -- driving the app
    def call(self, app: Callable, environ: dict) -> None:
        """Call the app and produce the start of its response (all of it, for the common shapes)."""
        self.called = True
        try:
            result = self.result = app(environ, self.start_response)
            if type(result) is list:
                if len(result) == 1 and self.started and not self.head_sent and type(result[0]) is bytes:
                    self.send_whole(result[0])
                    self.close_iterable()
                    return
                if self.started and not self.head_sent and all(type(b) is bytes for b in result):
                    self.out.push(self._head(sum(map(len, result))))  # a known length: not chunked
                    for data in result:
                        self._emit(data)
                    self._finish()
                    return
            elif isinstance(result, FileWrapper) and self._file(result):
                return
            elif type(result) is bytes and self.started and not self.head_sent:
                # a bytes object returned whole (iterating it would give ints): uWSGI sends it as the body
                self.send_whole(result)
                self.close_iterable()
                return
            self.iterator = iter(result)
        except ClientGone:
            self.close_iterable()
            raise
        except Exception as exc:  # noqa: BLE001 - any app failure must leave the worker serving
            self.fail(exc, environ)
            return
        self.pump(environ)

    def pump(self, environ: dict) -> None:
        """Pull body chunks until the buffer is above the high-water mark or the body ends."""
        out = self.out
        high = self.high
        emit = self._emit
        try:
            for data in self.iterator:
                if type(data) is not bytes:
                    if isinstance(data, FileWrapper) or hasattr(data, "read"):
                        # a file (wrapper) yielded as a chunk, as uWSGI allows: its bytes go out in its place
                        self.iterator = _file_chunks(data, self.iterator)
                        return self.pump(environ)
                    data = self._bytes(data)
                if data:
                    emit(data)
                    if out.size > high:
                        return
            self._finish()
        except ClientGone:
            self.close_iterable()
            raise
        except Exception as exc:  # noqa: BLE001
            self.fail(exc, environ)

    def _file(self, wrapper: FileWrapper) -> bool:
        """A file_wrapper body with a real descriptor goes out with sendfile(); False to iterate it instead."""
        if not self.started:
            return False
        try:
            fd = wrapper.filelike.fileno()
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size - offset
        except (AttributeError, OSError, ValueError):
            return False
        if size < 0:
            return False
        if wrapper.limit >= 0:
            size = min(size, wrapper.limit)
        if self.content_length >= 0:
            if size < self.content_length:
                self.keep_alive = False
            size = min(size, self.content_length)
        if not self.head_sent:
            self.out.push(self._head(size))
        if not self.head_only and size:
            self.out.push_file(fd, offset, size)
            self.body_sent = size
            self.sent_file = True
        self.done = True  # close() waits until the file is sent: the connection calls close_iterable()
        return True

    def fail(self, exc: BaseException, environ: dict) -> None:
        """An app error: a 500 if no head went out yet, else the response is cut (Connection closed)."""
        what = f"{environ.get('REQUEST_METHOD', '')} {environ.get('REQUEST_URI') or environ.get('PATH_INFO', '')}"
        if isinstance(exc, AppError):
            self.log_error(f"invalid response from the app for {what}: {exc}\n")
        else:
            self.log_error(f"error in the app for {what}:\n" + traceback.format_exc())
        self.failed = True
        self.answer_error(500, "The application raised an error; see the server log.")
        self.status_code = 500
        self.close_iterable()

    def answer_error(self, status: int, message: str) -> bool:
        """The request ends in an error: `status` with `message` if no head went out yet (what was buffered
        is dropped; True), else the response is cut (False). The connection closes after it either way."""
        self.keep_alive = False
        self.done = True
        if self.head_sent:
            self.cut = True
            return False
        self.head_sent = True
        self.status_code = status
        data = error_response(status, message, self.protocol if self.protocol.startswith("HTTP/") else "HTTP/1.0")
        self.header_bytes = len(data)
        self.out.parts.clear()
        self.out.size = 0
        self.out.push(data)
        return True

    cut = False  # the response could not be completed: the connection closes after what is buffered

    def close_iterable(self) -> None:
        """The iterable's close(), exactly once, whatever happened."""
        if self.closed:
            return
        self.closed = True
        close = getattr(self.result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001
                self.log_error("error in the app's close():\n" + traceback.format_exc())
