"""The uwsgi parser, sans-IO: the var block (round trips, every truncation, garbage), and a corpus of
packets run whole, one byte at a time and in random chunks, each with its expected outcome."""

from __future__ import annotations

import random

import pytest

from tests.protocol.chunks import chunkings, pieces_of
from uisge.errors import RequestError
from uisge.protocol.events import END, Reject, RequestHead
from uisge.protocol.uwsgi import UwsgiParser, encode_packet, encode_vars, parse_vars

NGINX_VARS = {
    "QUERY_STRING": "a=1&b=%C3%A9", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/plain",
    "CONTENT_LENGTH": "5", "REQUEST_URI": "/x?a=1", "PATH_INFO": "/x", "DOCUMENT_ROOT": "/srv",
    "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "https", "HTTPS": "on", "REMOTE_ADDR": "10.0.0.1",
    "REMOTE_PORT": "51234", "SERVER_PORT": "443", "SERVER_NAME": "example.org", "HTTP_HOST": "example.org",
    "HTTP_X_LATIN": "caf\xe9", "EMPTY": "",
}
GET = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "PATH_INFO": "/", "QUERY_STRING": "",
       "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example.org"}


def test_round_trip_keeps_every_var_and_byte():
    env, count = parse_vars(encode_vars(NGINX_VARS), 128)
    assert env == NGINX_VARS
    assert count == len(NGINX_VARS)


@pytest.mark.parametrize("cut", range(1, 40))
def test_every_truncation_is_a_400_never_an_index_error(cut):
    block = encode_vars({"REQUEST_METHOD": "GET", "PATH_INFO": "/abc"})
    first_var = len(encode_vars({"REQUEST_METHOD": "GET"}))
    if cut >= len(block) or cut == first_var:
        pytest.skip("a whole block, not a truncation")
    with pytest.raises(RequestError) as info:
        parse_vars(block[:cut], 128)
    assert info.value.status == 400


def test_random_garbage_gives_400_or_a_dict():
    rng = random.Random(1)
    for _ in range(2000):
        block = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        try:
            env, _ = parse_vars(block, 128)
        except RequestError as exc:
            assert exc.status == 400
        else:
            assert isinstance(env, dict)


def test_random_packets_never_raise_from_feed():
    rng = random.Random(2)
    for _ in range(2000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        parser = UwsgiParser(65535, 0, 512)
        for ev in parser.feed(raw):
            assert ev is END or ev.__class__ in (RequestHead, bytes, Reject)


def truncated_block() -> bytes:
    block = encode_vars({"PATH_INFO": "/abc"})[:-2]
    return bytes([0]) + len(block).to_bytes(2, "little") + b"\0" + block


def oversized_block() -> bytes:
    return encode_packet({"HTTP_COOKIE": "c" * 2000})


# (id, raw bytes, expected): ("process", vars subset, body, modifier1) | ("reject", status) | ("incomplete",)
CORPUS = [
    ("nginx-get", encode_packet(GET), ("process", GET, b"", 0)),
    ("nginx-post", encode_packet(NGINX_VARS, b"hello"), ("process", NGINX_VARS, b"hello", 0)),
    ("bytes-past-content-length-ignored", encode_packet(NGINX_VARS, b"helloEXTRA"), ("process", NGINX_VARS, b"hello", 0)),
    ("content-length-leading-digits", encode_packet({**GET, "CONTENT_LENGTH": "3abc"}, b"xyz"),
     ("process", {"CONTENT_LENGTH": "3abc"}, b"xyz", 0)),
    ("content-length-not-digits-is-0", encode_packet({**GET, "CONTENT_LENGTH": "abc"}, b"xyz"),
     ("process", {}, b"", 0)),
    ("content-length-zero", encode_packet({**GET, "CONTENT_LENGTH": "0"}), ("process", GET, b"", 0)),
    ("modifier1-30-manage-path-info", encode_packet(GET, modifier1=30), ("process", GET, b"", 30)),
    ("modifier2-carried", encode_packet(GET, modifier2=9), ("process", GET, b"", 0)),
    ("latin-1-value", encode_packet({**GET, "HTTP_X_NAME": "caf\xe9"}), ("process", {"HTTP_X_NAME": "caf\xe9"}, b"", 0)),
    ("dynamic-app-vars-dropped", encode_packet({**GET, "UWSGI_FILE": "/tmp/evil.py", "UWSGI_SCRIPT": "evil"}),
     ("process", GET, b"", 0)),
    ("unknown-modifier1-closes", encode_packet(GET, modifier1=5), ("reject", 0)),
    ("modifier1-17-spool-closes", encode_packet(GET, modifier1=17), ("reject", 0)),
    ("zero-datasize-closes", b"\0\0\0\0", ("reject", 0)),
    ("http-request-on-uwsgi-socket", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ("reject", 400)),
    ("var-length-overflows-block", truncated_block(), ("reject", 400)),
    ("empty-key", b"\0\x04\0\0\0\0\0\0", ("reject", 400)),
    ("too-many-vars", encode_packet({f"K{i}": "v" for i in range(30)}), ("reject", 400)),
    ("block-over-buffer-size", oversized_block(), ("reject", 431)),
    ("body-over-limit-post", encode_packet({**GET, "CONTENT_LENGTH": "1000"}, b"x" * 1000), ("reject", 413)),
    ("header-only", b"\0\x10", ("incomplete",)),
    ("vars-incomplete", encode_packet(GET)[:-3], ("incomplete",)),
    ("body-incomplete", encode_packet({**GET, "CONTENT_LENGTH": "10"}, b"12345"), ("incomplete",)),
]


def run(raw: bytes, chunks: list[int] | None):
    parser = UwsgiParser(max_head=1024, max_body=100, max_vars=20)
    head, body = None, []
    for piece in pieces_of(raw, chunks):
        for ev in parser.feed(piece):
            if ev.__class__ is RequestHead:
                head = ev
            elif ev.__class__ is bytes:
                body.append(ev)
            elif ev is END:
                return ("process", head.vars, b"".join(body), head.modifier1)
            else:
                assert ev.__class__ is Reject
                return ("reject", ev.status)
    return ("incomplete",)


@pytest.mark.parametrize("case_id,raw,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_uwsgi_corpus(case_id, raw, expected):
    for name, chunks in chunkings(len(raw), largest=9):
        got = run(raw, chunks)
        assert got[0] == expected[0], f"{name}: {got}"
        if expected[0] == "reject":
            assert got[1] == expected[1], f"{name}: {got}"
        elif expected[0] == "process":
            _, subset, body, modifier1 = expected
            env = got[1]
            assert {k: env.get(k) for k in subset} == subset, name
            assert not {"UWSGI_FILE", "UWSGI_SCRIPT"} & set(env), name
            assert got[2] == body and got[3] == modifier1, f"{name}: {got}"


def test_after_the_request_later_bytes_are_ignored():
    parser = UwsgiParser(65535)
    assert parser.feed(encode_packet(GET))[-1] is END
    assert parser.feed(encode_packet(GET)) == []


def test_a_reject_names_the_fix():
    (reject,) = UwsgiParser(65535, where="/run/app.sock").feed(b"POST / HTTP/1.1\r\n\r\n")
    assert "http-socket" in reject.reason and "/run/app.sock" in reject.reason
    (reject,) = UwsgiParser(1024).feed(oversized_block())
    assert "buffer-size" in reject.reason


def test_repeated_and_changed_segments_parse_the_same():
    """The segment cache is exact: a pair seen before, a changed value, a long value, all as sent."""
    first = {**GET, "REMOTE_PORT": "40000", "HTTP_COOKIE": "c" * 500}
    second = {**GET, "REMOTE_PORT": "40001", "HTTP_COOKIE": "d" * 500, "PATH_INFO": "/other"}
    for env in (first, second, first):
        parsed, count = parse_vars(encode_vars(env), 512)
        assert parsed == env and count == len(env)


def test_the_segment_cache_starts_again_when_full():
    from uisge.protocol import uwsgi

    for port in range(uwsgi._SEGMENTS_MAX + 10):  # a new REMOTE_PORT each time, as behind nginx
        env, _ = parse_vars(encode_vars({**GET, "REMOTE_PORT": str(port)}), 512)
        assert env["REMOTE_PORT"] == str(port)
    assert len(uwsgi._SEGMENTS) <= uwsgi._SEGMENTS_MAX
    assert encode_vars({"REQUEST_METHOD": "GET"}) in uwsgi._SEGMENTS  # what repeats is cached again


def reference_vars(block: bytes) -> list[tuple[str, str]]:
    """The pairs of a var block, read the plain way (no cache), in order."""
    pairs, pos = [], 0
    while pos < len(block):
        kl = int.from_bytes(block[pos:pos + 2], "little")
        key = block[pos + 2:pos + 2 + kl].decode("latin-1")
        pos += 2 + kl
        vl = int.from_bytes(block[pos:pos + 2], "little")
        pairs.append((key, block[pos + 2:pos + 2 + vl].decode("latin-1")))
        pos += 2 + vl
    return pairs


def test_runs_of_segments_parse_exactly_what_was_sent():
    """Blocks that mostly repeat (nginx's) with values changed, pairs dropped, moved and repeated: the
    cached runs never give anything but what each block holds, in its order."""
    from uisge.protocol import uwsgi

    rng = random.Random(3)
    template = list(NGINX_VARS.items()) + [("HTTP_ACCEPT", "text/html"), ("HTTP_USER_AGENT", "Mozilla/5.0"),
                                           ("HTTP_ACCEPT_LANGUAGE", "en")]
    base = {"SCRIPT_NAME": "", "wsgi.url_scheme": "http"}
    runs_seen = 0
    for i in range(3000):
        pairs = list(template)
        for _ in range(rng.randrange(4)):
            j = rng.randrange(len(pairs))
            change = rng.randrange(4)
            if change == 0:
                pairs[j] = (pairs[j][0], rng.choice(["", "x", "y" * 200, str(i)]))
            elif change == 1:
                del pairs[j]
            elif change == 2:
                pairs.insert(rng.randrange(len(pairs) + 1), pairs[j])  # a repeated key
            else:
                pairs.insert(rng.randrange(len(pairs) + 1), pairs.pop(j))
        block = b"".join(len(k).to_bytes(2, "little") + k.encode("latin-1") + len(v).to_bytes(2, "little")
                         + v.encode("latin-1") for k, v in pairs)
        expected = dict(base)
        for k, v in reference_vars(block):
            expected[k] = v
        env, count = parse_vars(block + b"BODY", 512, 0, len(block), dict(base))  # the body is never read
        assert list(env.items()) == list(expected.items())
        assert count == len(pairs)
        runs_seen = max(runs_seen, sum(1 for entry in uwsgi._SEGMENTS.values() if entry[2]))
    assert runs_seen  # runs were learnt (and taken, while they matched)


def test_nginx_blocks_are_taken_in_runs_around_what_changes():
    from uisge.protocol import uwsgi

    uwsgi._SEGMENTS.clear()
    uwsgi._runs[0] = 0
    for port in (40000, 40001, 40002):
        env, count = parse_vars(encode_vars({**NGINX_VARS, "REMOTE_PORT": str(port)}), 512)
        assert env["REMOTE_PORT"] == str(port) and count == len(NGINX_VARS)
    runs = {entry[0]: list(entry[3]) for entry in uwsgi._SEGMENTS.values() if entry[2]}
    # the pairs between QUERY_STRING, CONTENT_LENGTH, REQUEST_URI, PATH_INFO and REMOTE_PORT (they change)
    assert runs == {"REQUEST_METHOD": ["REQUEST_METHOD", "CONTENT_TYPE"],
                    "DOCUMENT_ROOT": ["DOCUMENT_ROOT", "SERVER_PROTOCOL", "REQUEST_SCHEME", "HTTPS", "REMOTE_ADDR"],
                    "SERVER_PORT": ["SERVER_PORT", "SERVER_NAME", "HTTP_HOST", "HTTP_X_LATIN", "EMPTY"]}


def test_what_the_runs_hold_is_bounded():
    from uisge.protocol import uwsgi

    uwsgi._SEGMENTS.clear()
    uwsgi._runs[0] = 0
    for i in range(2000):  # every block has stable pairs of its own, each seen twice
        block = encode_vars({f"HTTP_X_{i}_{j}": "v" * 60 for j in range(40)})
        parse_vars(block, 512)
        parse_vars(block, 512)
    runs = [entry for entry in uwsgi._SEGMENTS.values() if entry[2]]
    assert 0 < len(runs) <= uwsgi._RUNS_MAX
    assert all(len(entry[2]) <= uwsgi._RUN_BYTES and entry[4] <= uwsgi._RUN_PAIRS for entry in runs)
