"""Call the WSGI app for one request and write its response: start_response with PEP 3333's rules,
the write() callable, close() always called, response framing (Content-Length, chunked, close-
delimited), HEAD and 1xx/204/304 without body, header validation (CR/LF/NUL never emitted: 500).

One code path for HTTP and uwsgi connections; the difference is the `http` flag (uwsgi responses are
raw HTTP with the request's SERVER_PROTOCOL and no added headers, as uWSGI sends them). The socket is
written directly; nothing here reads from it.
"""

from __future__ import annotations

import os
import re
import socket
import time
import traceback
from typing import Any

from uisge.protocol.status import reason as reason_phrase

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_NO_BODY_STATUS = frozenset({204, 304})

# What a response header is to the writer: most are sent as given; these few are framing.
PLAIN, CONTENT_LENGTH, CONNECTION, TRANSFER_ENCODING, HOP_BY_HOP = 0, 1, 2, 3, 4
_KINDS = {"content-length": CONTENT_LENGTH, "connection": CONNECTION, "transfer-encoding": TRANSFER_ENCODING,
          "keep-alive": HOP_BY_HOP, "upgrade": HOP_BY_HOP, "te": HOP_BY_HOP, "trailer": HOP_BY_HOP,
          "proxy-connection": HOP_BY_HOP}

# Apps send the same few headers again and again: each distinct (name, value) tuple is validated and
# encoded once, then found here. Bounded in count and in value length, so it cannot grow without end.
_HEADER_CACHE: dict[tuple[str, str], tuple[int, bytes, int]] = {}
_STATUS_CACHE: dict[str, tuple[int, bytes]] = {}
_PROTOCOLS = {"HTTP/1.1": b"HTTP/1.1 ", "HTTP/1.0": b"HTTP/1.0 "}
_CACHE_MAX = 4096
_CACHE_VALUE_MAX = 256


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
    if len(value) <= _CACHE_VALUE_MAX and len(_HEADER_CACHE) < _CACHE_MAX:
        _HEADER_CACHE[item] = entry
    return entry


_date: list = [0, b""]  # [second, b"Date: ...\r\n"]


def http_date() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[1] = b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode() + b"\r\n"
        _date[0] = now
    return _date[1]


class ClientGone(Exception):
    """The client closed the connection or stopped reading within socket-timeout."""


class AppError(Exception):
    """The app broke a WSGI rule (bad status, bad header); the message says which."""


class FileWrapper:
    """wsgi.file_wrapper: iterates a file; the writer sends it with sendfile() when it can."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data


def send_all(sock: socket.socket, data: bytes | memoryview, timeout: float) -> None:
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError as exc:
        raise ClientGone(str(exc)) from None
    if sent == len(data):
        return
    sock.settimeout(timeout)
    try:
        sock.sendall(memoryview(data)[sent:])
    except OSError as exc:  # includes socket.timeout
        raise ClientGone(str(exc) or "timed out") from None
    finally:
        sock.setblocking(False)


class Responder:
    """start_response, write() and the framing state of one response.

    Only what differs per request is set in __init__; the rest are class defaults that an instance
    overrides when it must (cheaper than setting a dozen slots on every request).
    """

    status_code = 0
    status_bytes = b""
    lines: list[bytes] = []
    head_sent = False
    started = False
    chunked = False
    content_length = -1
    body_sent = 0
    header_bytes = 0
    header_count = 0
    failed = False  # the app raised or broke a WSGI rule (counted as an exception in the stats)

    def __init__(self, sock: socket.socket, http: bool, protocol: str, head_only: bool, keep_alive: bool,
                 timeout: float, extra_lines: list[bytes]) -> None:
        self.sock = sock
        self.http = http
        self.protocol = protocol
        self.head_only = head_only
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.extra_lines = extra_lines

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
        lines = []
        for item in headers:
            try:
                kind, line, length = _HEADER_CACHE[item]
            except (KeyError, TypeError):  # not seen yet, or unhashable: check_header says what is wrong
                kind, line, length = check_header(item)
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
        self.started = True
        return self.write

    def write(self, data: bytes) -> None:
        if not self.started:
            raise AppError("write() called before start_response()")
        if type(data) is not bytes:
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            else:
                raise AppError(f"the app gave a {type(data).__name__} where bytes are required: {data!r:.80}")
        if not self.head_sent:
            self.send_head(data, final=False)
            return
        self._send_body(data)

    # -- framing
    def _head(self, body_len: int | None) -> bytes:
        """The response head; body_len is the whole body's length when known before sending."""
        code = self.status_code
        no_body = self.head_only or code < 200 or code == 204 or code == 304
        protocol = self.protocol
        parts = [_PROTOCOLS.get(protocol) or protocol.encode("latin-1") + b" ", self.status_bytes, b"\r\n"]
        parts += self.lines
        if self.http:
            if self.extra_lines:
                parts += self.extra_lines
            if self.content_length < 0 and not no_body:
                if body_len is not None:
                    self.content_length = body_len
                    parts.append(b"Content-Length: %d\r\n" % body_len)
                elif protocol == "HTTP/1.1":
                    self.chunked = True
                    parts.append(b"Transfer-Encoding: chunked\r\n")
                else:
                    self.keep_alive = False
            if not self.keep_alive:
                parts.append(b"Connection: close\r\n")
            elif protocol == "HTTP/1.0":
                parts.append(b"Connection: keep-alive\r\n")
            parts.append(_date[1] if _date[0] == int(time.time()) else http_date())
        parts.append(b"\r\n")
        head = b"".join(parts)
        self.header_bytes = len(head)
        if no_body:
            self.head_only = True
        return head

    def send_whole(self, body: bytes) -> None:
        """Send a response whose body is this one bytes object (the common `return [body]`)."""
        head = self._head(len(body))
        self.head_sent = True
        if self.head_only:
            data = head
        else:
            cl = self.content_length
            if cl >= 0 and cl != len(body):  # the app's Content-Length disagrees with what it gave
                body = body[:cl]
                self.keep_alive = False
            data = head + body
            self.body_sent = len(body)
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from None
        if sent != len(data):
            send_all(self.sock, memoryview(data)[sent:], self.timeout)

    def send_prebuilt(self, ready) -> None:
        """Send a static.Prebuilt answer: its header lines were checked when it was built."""
        self.status_code, self.status_bytes = 200, b"200 OK"
        self.lines = ready.lines
        self.content_length = ready.content_length
        self.header_count = ready.header_count
        self.started = True
        self.send_whole(ready.body)

    def send_head(self, first: bytes, final: bool) -> None:
        """Send the head with the first body piece; `final` means that piece is the whole body."""
        head = self._head(len(first) if final else None)
        self.head_sent = True
        if self.head_only or not first:
            send_all(self.sock, head, self.timeout)
            return
        if self.chunked:
            send_all(self.sock, head + b"%x\r\n" % len(first) + first + b"\r\n", self.timeout)
        else:
            first = self._clip(first)
            send_all(self.sock, head + first, self.timeout)
        self.body_sent += len(first)

    def _clip(self, data: bytes) -> bytes:
        if self.content_length >= 0 and self.body_sent + len(data) > self.content_length:
            data = data[: max(0, self.content_length - self.body_sent)]
            self.keep_alive = False
        return data

    def _send_body(self, data: bytes) -> None:
        if self.head_only or not data:
            return
        if self.chunked:
            send_all(self.sock, b"%x\r\n" % len(data) + data + b"\r\n", self.timeout)
        else:
            data = self._clip(data)
            if data:
                send_all(self.sock, data, self.timeout)
        self.body_sent += len(data)

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Send a file_wrapper body with sendfile(); False when the file has no usable descriptor."""
        try:
            fd = wrapper.filelike.fileno()
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size - offset
        except (AttributeError, OSError, ValueError):
            return False
        if size < 0:
            return False
        if self.content_length >= 0:
            size = min(size, self.content_length)
        if not self.head_sent:
            head = self._head(size)
            self.head_sent = True
            send_all(self.sock, head, self.timeout)
        if self.head_only or self.chunked:
            return self.head_only
        self.sock.settimeout(self.timeout)
        try:
            while size > 0:
                sent = os.sendfile(self.sock.fileno(), fd, offset, min(size, 1 << 20))
                if sent == 0:
                    break
                offset += sent
                size -= sent
                self.body_sent += sent
        except OSError as exc:
            raise ClientGone(str(exc)) from None
        finally:
            self.sock.setblocking(False)
        return True

    def finish(self) -> None:
        if not self.head_sent:
            self.send_head(b"", final=True)
        elif self.chunked:
            send_all(self.sock, b"0\r\n\r\n", self.timeout)
        if self.content_length >= 0 and self.body_sent < self.content_length and not self.head_only:
            self.keep_alive = False  # the app promised more than it gave: the client must not wait


def error_response(status: int, message: str, protocol: str = "HTTP/1.1") -> bytes:
    body = f"{status} {reason_phrase(status)}\n{message}\n".encode("utf-8", "replace")
    return (f"{protocol} {status} {reason_phrase(status)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode("latin-1") + http_date() + b"\r\n" + body


def run_app(app, environ: dict, responder: Responder, log_error) -> None:
    """Call the app and send its response. Exceptions become a 500 (or a cut connection if the head
    was already sent) and a traceback in the log; ClientGone propagates for the caller to close."""
    result = None
    try:
        result = app(environ, responder.start_response)
        if not responder.started:
            raise AppError("the app returned without calling start_response()")
        if type(result) is list and len(result) == 1 and not responder.head_sent:
            body = result[0]
            if type(body) is not bytes:
                responder.write(body)  # raises the type error
            responder.send_whole(body)
            return
        elif isinstance(result, FileWrapper) and responder.send_file(result):
            pass
        else:
            for data in result:
                if data:
                    responder.write(data)
        responder.finish()
    except ClientGone:
        raise
    except Exception as exc:  # noqa: BLE001 - any app failure must leave the worker serving
        what = f"{environ.get('REQUEST_METHOD', '')} {environ.get('REQUEST_URI') or environ.get('PATH_INFO', '')}"
        if isinstance(exc, AppError):
            log_error(f"invalid response from the app for {what}: {exc}\n")
        else:
            log_error(f"error in the app for {what}:\n" + traceback.format_exc())
        responder.status_code = 500
        responder.failed = True
        responder.keep_alive = False
        if not responder.head_sent:
            responder.head_sent = True
            data = error_response(500, "The application raised an error; see the server log.",
                                  responder.protocol if responder.protocol.startswith("HTTP/") else "HTTP/1.0")
            responder.header_bytes = len(data)
            send_all(responder.sock, data, responder.timeout)
        else:
            raise ClientGone("response cut after an app error") from None
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001
                log_error("error in the app's close():\n" + traceback.format_exc())
