"""The uwsgi var-block parser, sans-IO: round trips, every truncation, random garbage, CONTENT_LENGTH."""

from __future__ import annotations

import random

import pytest

from uisge.errors import RequestError
from uisge.protocol.uwsgi import UwsgiRequest, encode_packet, encode_vars, parse_header, parse_vars

NGINX_VARS = {
    "QUERY_STRING": "a=1&b=%C3%A9", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/plain",
    "CONTENT_LENGTH": "5", "REQUEST_URI": "/x?a=1", "PATH_INFO": "/x", "DOCUMENT_ROOT": "/srv",
    "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "https", "HTTPS": "on", "REMOTE_ADDR": "10.0.0.1",
    "REMOTE_PORT": "51234", "SERVER_PORT": "443", "SERVER_NAME": "example.org", "HTTP_HOST": "example.org",
    "HTTP_X_LATIN": "caf\xe9", "EMPTY": "",
}


def test_round_trip_keeps_every_var_and_byte():
    env, count = parse_vars(encode_vars(NGINX_VARS), 128)
    assert env == NGINX_VARS
    assert count == len(NGINX_VARS)


def test_header_fields():
    packet = encode_packet({"A": "b"}, modifier1=30, modifier2=7)
    assert parse_header(packet) == (30, len(packet) - 4, 7)


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


def test_empty_key_and_too_many_vars_are_refused():
    with pytest.raises(RequestError, match="empty key"):
        parse_vars(b"\x00\x00\x00\x00", 128)
    with pytest.raises(RequestError, match="max-vars"):
        parse_vars(encode_vars({f"K{i}": "v" for i in range(10)}), 5)


@pytest.mark.parametrize("value,expected", [("", 0), ("0", 0), ("12", 12), ("12abc", 12), ("abc", 0),
                                            (" 5", 0), ("\u0661\u0662", 0)])
def test_content_length_reads_leading_digits_as_uwsgi_does(value, expected):
    assert UwsgiRequest(0, 0, {"CONTENT_LENGTH": value}, 1, 10).content_length == expected
