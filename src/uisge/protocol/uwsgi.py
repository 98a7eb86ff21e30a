"""The uwsgi wire protocol, sans-IO: a 4-byte header, a var block of u16-length key/value pairs, then
CONTENT_LENGTH body bytes (reference §1). One request per connection. The parser emits the events of
protocol/events.py, like the HTTP one.

Every u16 length is bounds-checked against the packet; a packet larger than buffer-size is an error
that names the option to raise. Must not import socket, os, select or time.
"""

from __future__ import annotations

from uisge.errors import RequestError
from uisge.protocol.events import END, Reject, RequestHead

_NO_HEADERS: list = []
_HTTP_METHOD_PREFIXES = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC")
# the modifier1 values uWSGI's Python plugin serves: 0 (WSGI) and 30 (WSGI, SCRIPT_NAME stripped from PATH_INFO)
PYTHON_MODIFIERS = frozenset({0, 30})

# dynamic-app vars that let a peer pick code to run in uWSGI; uisge ignores them (reference §1.3)
DYNAMIC_VARS = frozenset({"UWSGI_FILE", "UWSGI_SCRIPT", "UWSGI_MODULE", "UWSGI_CALLABLE", "UWSGI_CHDIR",
                          "UWSGI_PYHOME", "UWSGI_HOME", "UWSGI_SETENV", "UWSGI_POSTFILE", "UWSGI_TOUCH_RELOAD",
                          "UWSGI_APPID", "UWSGI_CACHE_GET"})


class UwsgiParser:
    """feed(data) -> events (protocol/events.py), in any chunking. One request per connection: after its
    END (or a Reject) the parser is done and later bytes are ignored.

    Refused as uWSGI refuses them: an HTTP request (a hint for the misconfigured nginx), a var block
    larger than buffer-size (431), a malformed var block (400), a body above limit-post (413); a packet
    with a zero var block or a modifier1 no Python app serves closes the connection with no answer
    (status 0), as uWSGI does.
    """

    # limits and the listener's environ: class attributes of a configured() subclass (one per listener),
    # so a connection's parser sets almost nothing; the state between requests is the class default too
    max_head = 65535
    max_body = 0
    max_vars = 512
    where = ""  # the listener's name, for the hints
    base: dict = {}  # what the vars are added to (a copy of it): the listener's constant environ
    buf = b""
    left = 0  # body bytes still to come
    dead = False
    in_head = False
    in_body = False

    def __init__(self, max_head: int | None = None, max_body: int = 0, max_vars: int = 512, where: str = "",
                 base: dict | None = None) -> None:
        self._events: list = []
        if max_head is not None:  # not configured(): limits given per parser
            self.max_head, self.max_body, self.max_vars, self.where = max_head, max_body, max_vars, where
            self.base = base or {}

    @classmethod
    def configured(cls, max_head: int, max_body: int, max_vars: int, where: str, base: dict) -> type[UwsgiParser]:
        """A parser class for one listener: its limits and environ set once."""
        return type("UwsgiParser", (cls,), {"max_head": max_head, "max_body": max_body, "max_vars": max_vars,
                                             "where": where, "base": base})

    def feed(self, data: bytes) -> list:
        events = self._events
        events.clear()
        if self.dead:
            return events
        if self.in_body:
            self._body(data)
            return events
        buf = self.buf + data if self.buf else data
        if len(buf) < 4:
            self.buf = buf
            self.in_head = True
            return events
        modifier1 = buf[0]
        size = buf[1] | buf[2] << 8
        if modifier1 not in PYTHON_MODIFIERS:  # 0 or 30: never the first byte of an HTTP request
            if buf[:4] in _HTTP_METHOD_PREFIXES:
                return self._reject(400, f"this is a uwsgi-protocol socket ({self.where}), but an HTTP request "
                                         f"arrived: point nginx's uwsgi_pass at it, or serve HTTP with "
                                         f"`http-socket`/`http` instead of `socket`")
            return self._reject(0, f"-- unavailable modifier requested: {modifier1} --")
        if size == 0:
            return self._reject(0, "empty uwsgi packet (datasize 0)")
        if size > self.max_head:
            return self._reject(431, f"invalid request block size: {size} (max {self.max_head}); raise "
                                     f"buffer-size to accept it")
        if len(buf) < 4 + size:
            self.buf = buf
            self.in_head = True
            return events
        if self.buf:
            self.buf = b""
            self.in_head = False
        try:
            env, nvars = parse_vars(buf, self.max_vars, 4, 4 + size, self.base.copy())
        except RequestError as exc:
            return self._reject(exc.status, exc.reason)
        if b"UWSGI_" in buf and not DYNAMIC_VARS.isdisjoint(env):
            for key in DYNAMIC_VARS.intersection(env):
                del env[key]
        cl = env.get("CONTENT_LENGTH", "")
        length = (int(cl) if cl.isascii() else 0) if cl.isdigit() else leading_digits(cl) if cl else 0
        if self.max_body and length > self.max_body:
            return self._reject(413, f"request body of {length} bytes is larger than limit-post "
                                     f"({self.max_body} bytes)")
        head = RequestHead("uwsgi", b"", b"", env.get("SERVER_PROTOCOL") or "HTTP/1.0", _NO_HEADERS, False,
                           length, size, nvars)
        head.vars = env
        head.modifier1 = modifier1
        head.modifier2 = buf[3]
        events.append(head)
        if length:
            self.left = length
            self.in_body = True
            if len(buf) > 4 + size:
                self._body(buf[4 + size:] if len(buf) - 4 - size <= length else buf[4 + size:4 + size + length])
        else:
            events.append(END)
            self.dead = True  # one request per connection: what follows is ignored
        return events

    def _body(self, data: bytes) -> None:
        if len(data) > self.left:
            data = data[:self.left]
        self.left -= len(data)
        if data:
            self._events.append(data)
        if not self.left:
            self.in_body = False
            self.dead = True
            self._events.append(END)

    def _reject(self, status: int, reason: str) -> list:
        self.dead = True
        self.in_head = self.in_body = False
        self.buf = b""
        self._events.append(Reject(status, reason))
        return self._events


def leading_digits(text: str) -> int:
    """uWSGI reads CONTENT_LENGTH up to the first non-digit: "12abc" is 12, "abc" is 0."""
    digits = 0
    for ch in text:
        if not "0" <= ch <= "9":
            break
        digits += 1
    return int(text[:digits]) if digits else 0


# Var segments seen before: nginx sends the same pairs, in the same order, request after request
# (REQUEST_METHOD GET, SERVER_PROTOCOL, DOCUMENT_ROOT, HTTP_HOST, ...). A segment's bytes map to an entry
# (key, value, run, pairs, count):
# - a hit costs one bytes slice and a lookup instead of two string slices and a fresh hash;
# - `run`: the bytes of two or more segments that followed each other in an earlier block, starting
#   with this one, and `pairs` their vars (`count` of them): when the block goes on with exactly those
#   bytes (one startswith), they are all taken at once. None: a stable pair not in a run yet; False: it
#   starts no run (a value that changes per request, a run that stopped matching, or a pair alone).
# Exact by construction: a run is taken only when its bytes are there. Bounded in count and segment size;
# when full it starts again, so one-off values (REMOTE_PORT, request ids) cannot keep the common pairs out.
_SEGMENTS: dict[bytes, tuple] = {}
_SEGMENTS_MAX = 4096
_SEGMENT_MAX = 128
# runs are bounded too (at most 16 pairs in 1 KiB, 256 of them until the cache starts again), so what the
# cache holds stays under about 1 MiB whatever the blocks
_RUN_PAIRS = 16
_RUN_BYTES = 1024
_RUNS_MAX = 256
_runs = [0]  # runs stored since the cache last started again
# vars whose value changes from one request to the next: never part of a run
_VOLATILE = frozenset({"QUERY_STRING", "REQUEST_URI", "PATH_INFO", "DOCUMENT_URI", "CONTENT_LENGTH", "REMOTE_PORT",
                       "HTTP_COOKIE", "HTTP_REFERER", "HTTP_X_REQUEST_ID", "HTTP_X_FORWARDED_FOR",
                       "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_TRACEPARENT", "HTTP_CONTENT_LENGTH"})


def parse_vars(data: bytes | bytearray | memoryview, max_vars: int, start: int = 0,
               end: int | None = None, into: dict | None = None) -> tuple[dict[str, str], int]:
    """The vars of a uwsgi var block (data[start:end], by default all of `data`), every length checked;
    they are added to `into` when given (the listener's constant environ, so no merge follows).

    The hot loop has no explicit checks: a length read past the data raises IndexError, and a key or
    value that runs past `end` leaves the position beyond it (positions only grow); both are caught
    once, below. A run is taken only within `end`. Offsets in the latin-1 text are offsets in the bytes
    (one character per byte).
    """
    if type(data) is not bytes:
        data = bytes(data)
    if end is None:
        end = len(data)
    env: dict[str, str] = {} if into is None else into
    segments = _SEGMENTS
    text = None
    pos = start
    count = 0
    stable = 0  # cached pairs taken one by one that could join a run: the block is then learnt from
    try:
        while pos < end:
            mid = pos + 2 + (data[pos] | data[pos + 1] << 8)  # key: pos+2..mid, value: mid+2..nxt
            nxt = mid + 2 + (data[mid] | data[mid + 1] << 8)
            if nxt - pos <= _SEGMENT_MAX and nxt <= end:
                segment = data[pos:nxt]
                entry = segments.get(segment)
                if entry is not None:
                    run = entry[2]
                    if run:
                        if data.startswith(run, pos, end):
                            env.update(entry[3])
                            pos += len(run)
                            count += entry[4]
                            continue
                        segments[segment] = (entry[0], entry[1], False, None, 0)  # it stopped matching
                    elif run is None:
                        stable += 1
                    env[entry[0]] = entry[1]
                else:
                    if text is None:
                        text = data.decode("latin-1") if end == len(data) else str(memoryview(data)[:end], "latin-1")
                    key = text[pos + 2:mid]
                    value = text[mid + 2:nxt]
                    if len(segments) >= _SEGMENTS_MAX:
                        segments.clear()  # full of one-off values (ports, ids): start again with what repeats now
                        _runs[0] = 0
                    segments[segment] = (key, value, False if key in _VOLATILE else None, None, 0)
                    env[key] = value
            else:
                if text is None:
                    text = data.decode("latin-1") if end == len(data) else str(memoryview(data)[:end], "latin-1")
                env[text[pos + 2:mid]] = text[mid + 2:nxt]
            pos = nxt
            count += 1
    except IndexError:
        raise RequestError(400, f"invalid uwsgi packet: a length at offset {pos - start} runs past the end of "
                                f"the {end - start}-byte var block") from None
    if pos != end:
        raise RequestError(400, f"invalid uwsgi packet: the last value overflows the {end - start}-byte var "
                                f"block")
    if "" in env:  # the listener's environ never has an empty key: one came from the packet
        raise RequestError(400, "invalid uwsgi packet: empty key")
    if count > max_vars:
        raise RequestError(400, f"uwsgi packet has more than {max_vars} variables (raise max-vars)")
    if stable and _runs[0] < _RUNS_MAX:
        _learn_runs(data, start, end)
    return env, count


def _learn_runs(data: bytes, start: int, end: int) -> None:
    """Store the runs of a valid block: each chain of two or more stable pairs (cached, run None) becomes
    the run of its first segment; a stable pair with no stable neighbour is marked False, so a block
    whose pairs are all in runs or volatile never comes here again."""
    segments = _SEGMENTS
    chain: list[tuple[int, bytes, tuple]] = []  # (position, segment, entry) of the stable pairs in a row
    pos = start
    while pos < end:
        mid = pos + 2 + (data[pos] | data[pos + 1] << 8)
        nxt = mid + 2 + (data[mid] | data[mid + 1] << 8)
        segment = data[pos:nxt]
        entry = segments.get(segment) if nxt - pos <= _SEGMENT_MAX else None
        stable = entry is not None and entry[2] is None
        if stable and (not chain or (len(chain) < _RUN_PAIRS and nxt - chain[0][0] <= _RUN_BYTES)):
            chain.append((pos, segment, entry))
            pos = nxt
            continue
        if not _store(chain, data, pos):
            return
        chain = [(pos, segment, entry)] if stable else []  # a stable pair that did not fit starts the next
        if entry is not None and entry[2] and data.startswith(entry[2], pos, end):
            nxt = pos + len(entry[2])  # a run, taken as parse_vars takes it
        pos = nxt
    _store(chain, data, pos)


def _store(chain: list[tuple[int, bytes, tuple]], data: bytes, stop: int) -> bool:
    """A chain ends at `stop`: two or more pairs make a run, one is marked alone. False: no more runs now."""
    if len(chain) > 1:
        first, segment, head = chain[0]
        _SEGMENTS[segment] = (head[0], head[1], data[first:stop], {e[0]: e[1] for _, _, e in chain}, len(chain))
        _runs[0] += 1
        return _runs[0] < _RUNS_MAX
    if chain:
        _, segment, alone = chain[0]
        _SEGMENTS[segment] = (alone[0], alone[1], False, None, 0)
    return True


def encode_vars(env: dict[str, str]) -> bytes:
    """The var block for `env` (used by tests and tools that speak uwsgi to a server)."""
    out = bytearray()
    for key, value in env.items():
        k, v = key.encode("latin-1"), value.encode("latin-1")
        out += len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
    return bytes(out)


def encode_packet(env: dict[str, str], body: bytes = b"", modifier1: int = 0, modifier2: int = 0) -> bytes:
    block = encode_vars(env)
    if len(block) > 65535:
        raise ValueError("uwsgi var block larger than 65535 bytes")
    return bytes([modifier1]) + len(block).to_bytes(2, "little") + bytes([modifier2]) + block + body
