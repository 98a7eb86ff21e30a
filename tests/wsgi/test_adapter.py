"""PEP 3333 in the response adapter, without sockets: the output buffer here is a plain list."""

from __future__ import annotations

import sys

import pytest

from uisge.wsgi.adapter import AppError, Response


class Out:
    """What the adapter needs of worker/output.Output, in memory."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def push(self, data: bytes) -> None:
        self.parts.append(bytes(data))
        self.size += len(data)

    send_now = push

    def send_now_parts(self, head: bytes, body: bytes) -> None:
        self.push(head)
        self.push(body)

    def push_file(self, fd, offset, size) -> None:
        self.parts.append(b"<file %d bytes>" % size)

    def drain(self, timeout: float) -> None:
        self.size = 0

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


def respond(app, method: str = "GET", protocol: str = "HTTP/1.1", http: bool = True, high: int = 1 << 20):
    errors: list[str] = []
    out = Out()
    resp = Response.configured(http, [], 5.0, high, errors.append)(out, protocol, method == "HEAD", True)
    env = {"REQUEST_METHOD": method, "PATH_INFO": "/"}
    resp.call(app, env)
    while not resp.done:
        resp.pump(env)
    return resp, out.data, errors


def body_of(data: bytes) -> bytes:
    return data.partition(b"\r\n\r\n")[2]


def test_start_response_inside_the_generator():
    def app(env, sr):
        sr("200 OK", [("Content-Type", "text/plain")])
        yield b"one"
        yield b"two"
    resp, data, errors = respond(app)
    assert data.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n")
    assert body_of(data) == b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"
    assert not errors


def test_head_waits_for_the_first_non_empty_chunk_and_exc_info_may_replace_it():
    def app(env, sr):
        sr("200 OK", [])
        yield b""
        try:
            raise KeyError("late")
        except KeyError:
            sr("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
        yield b"sorry"
    _, data, _ = respond(app)
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n")


def test_exc_info_after_the_head_reraises_and_cuts():
    def app(env, sr):
        sr("200 OK", [])
        yield b"sent"
        try:
            raise KeyError("late")
        except KeyError:
            sr("500 Oops", [], sys.exc_info())
        yield b"never"
    resp, data, errors = respond(app)
    assert resp.cut and b"never" not in data and "KeyError" in errors[0]


def test_second_start_response_without_exc_info_is_an_error():
    def app(env, sr):
        sr("200 OK", [])
        sr("200 OK", [])
        return [b"x"]
    resp, data, errors = respond(app)
    assert data.startswith(b"HTTP/1.1 500") and "a second time" in errors[0]


@pytest.mark.parametrize("app,message", [
    (lambda env, sr: iter([b"body"]), "before calling start_response"),
    (lambda env, sr: [], "without calling start_response"),
    (lambda env, sr: (sr("200 OK", []), ["text"])[1], "where bytes are required"),
    (lambda env, sr: (sr("200 OK", [("X-Bad", "a\r\nb")]), [b""])[1], "CR, LF or NUL"),
    (lambda env, sr: (sr(200, []), [b""])[1], "status must be a str"),
])
def test_rule_breaks_are_500s_naming_the_rule(app, message):
    resp, data, errors = respond(app)
    assert data.startswith(b"HTTP/1.1 500") and message in errors[0] and resp.failed


def test_bytes_returned_whole_is_the_body_as_on_uwsgi():
    def app(env, sr):  # uWSGI's tests/testpy3.py: iterating it would give ints
        sr("200 OK", [("Content-Type", "text/plain")])
        return b"i Am a Python 3.x bytestring"
    _, data, errors = respond(app)
    assert b"Content-Length: 28\r\n" in data and body_of(data) == b"i Am a Python 3.x bytestring" and not errors


def test_write_then_empty_list():
    def app(env, sr):
        write = sr("200 OK", [])
        write(b"abc")
        write(bytearray(b"def"))
        return []
    _, data, _ = respond(app)
    assert body_of(data) == b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"


def test_known_lengths_are_not_chunked():
    _, data, _ = respond(lambda env, sr: (sr("200 OK", []), [b"ab", b"cd"])[1])
    assert b"Content-Length: 4\r\n" in data and body_of(data) == b"abcd"
    _, data, _ = respond(lambda env, sr: (sr("200 OK", []), [b"whole"])[1])
    assert b"Content-Length: 5\r\n" in data and body_of(data) == b"whole"


def test_more_than_content_length_is_clipped_and_the_connection_closes():
    def app(env, sr):
        sr("200 OK", [("Content-Length", "3")])
        yield b"abcdef"
    resp, data, _ = respond(app)
    assert body_of(data) == b"abc" and not resp.keep_alive


def test_less_than_content_length_closes_the_connection():
    def app(env, sr):
        sr("200 OK", [("Content-Length", "10")])
        yield b"abc"
    resp, _, _ = respond(app)
    assert not resp.keep_alive


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_no_body_statuses(status):
    _, data, _ = respond(lambda env, sr: (sr(status, []), [b"ignored"])[1])
    assert data.endswith(b"\r\n\r\n") and b"ignored" not in data and b"Content-Length" not in data


def test_head_request_iterates_but_sends_no_body():
    seen = []

    def app(env, sr):
        sr("200 OK", [])
        for piece in (b"a", b"b"):
            seen.append(piece)
            yield piece
    _, data, _ = respond(app, method="HEAD")
    assert seen == [b"a", b"b"] and data.endswith(b"\r\n\r\n")


def test_http10_without_length_is_close_delimited():
    def app(env, sr):
        sr("200 OK", [])
        yield b"x"
    resp, data, _ = respond(app, protocol="HTTP/1.0")
    assert b"Connection: close" in data and body_of(data) == b"x" and not resp.keep_alive


def test_uwsgi_responses_are_raw():
    def app(env, sr):
        sr("200 OK", [("Content-Type", "text/plain")])
        yield b"x"
    _, data, _ = respond(app, http=False, protocol="HTTP/1.0")
    assert data == b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nx"


def test_close_is_called_exactly_once_on_success_and_on_error():
    class Body:
        closed = 0

        def __init__(self, fail):
            self.fail = fail

        def __iter__(self):
            yield b"x"
            if self.fail:
                raise ValueError("boom")

        def close(self):
            Body.closed += 1

    for fail in (False, True):
        Body.closed = 0
        body = Body(fail)
        resp, _, _ = respond(lambda env, sr: (sr("200 OK", []), body)[1])
        resp.close_iterable()
        assert Body.closed == 1


def test_the_iterable_is_pulled_only_below_the_high_water_mark():
    pulled = []

    def app(env, sr):
        sr("200 OK", [])
        for i in range(10):
            pulled.append(i)
            yield b"x" * 100
    out = Out()
    resp = Response.configured(True, [], 5.0, 250, lambda text: None)(out, "HTTP/1.1", False, True)
    resp.call(app, {})
    first = len(pulled)
    assert 1 <= first <= 3 and out.size > 250 and not resp.done  # stopped once above the mark
    out.parts.clear()
    out.size = 0  # the socket took it all
    resp.pump({})
    assert first < len(pulled) <= first + 3 and not resp.done


def test_a_file_yielded_among_the_chunks_is_sent_in_its_place(tmp_path):
    """uWSGI's tests/staticfile.py yields wsgi.file_wrapper(open(name)) (a text-mode file) from a generator."""
    from uisge.wsgi.adapter import FileWrapper

    path = tmp_path / "f.bin"
    path.write_bytes(b"\x89PNG" + b"x" * 70000)
    opened = []

    def app(env, sr):
        sr("200 OK", [("Content-Type", "image/png")])
        yield b"<"
        fh = open(path)  # text mode, as the uWSGI test does: its bytes are what goes out
        opened.append(fh)
        yield FileWrapper(fh, 32 * 1024)
        yield b">"
    resp, data, errors = respond(app, protocol="HTTP/1.0")
    assert body_of(data) == b"<\x89PNG" + b"x" * 70000 + b">" and not errors
    assert opened[0].closed
