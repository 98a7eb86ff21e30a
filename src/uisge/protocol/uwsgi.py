"""The uwsgi wire protocol, sans-IO: a 4-byte header, a var block of u16-length key/value pairs, then
CONTENT_LENGTH body bytes (reference §1). One request per connection.

Every u16 length is bounds-checked against the packet; a packet larger than buffer-size is an error
that names the option to raise. Must not import socket, os, select or time.
"""

from __future__ import annotations

import struct

from uisge.errors import RequestError

_U16 = struct.Struct("<H").unpack_from

# dynamic-app vars that let a peer pick code to run in uWSGI; uisge ignores them (reference §1.3)
DYNAMIC_VARS = frozenset({"UWSGI_FILE", "UWSGI_SCRIPT", "UWSGI_MODULE", "UWSGI_CALLABLE", "UWSGI_CHDIR",
                          "UWSGI_PYHOME", "UWSGI_HOME", "UWSGI_SETENV", "UWSGI_POSTFILE", "UWSGI_TOUCH_RELOAD",
                          "UWSGI_APPID", "UWSGI_CACHE_GET"})


class UwsgiRequest:
    __slots__ = ("modifier1", "modifier2", "vars", "nvars", "pktsize", "content_length")

    def __init__(self, modifier1: int, modifier2: int, env: dict[str, str], nvars: int, pktsize: int) -> None:
        self.modifier1 = modifier1
        self.modifier2 = modifier2
        self.vars = env
        self.nvars = nvars
        self.pktsize = pktsize
        cl = env.get("CONTENT_LENGTH", "")
        if not cl or cl.isdigit():
            self.content_length = int(cl) if cl and cl.isascii() else 0
        else:
            self.content_length = leading_digits(cl)


def leading_digits(text: str) -> int:
    """uWSGI reads CONTENT_LENGTH up to the first non-digit: "12abc" is 12, "abc" is 0."""
    digits = 0
    for ch in text:
        if not "0" <= ch <= "9":
            break
        digits += 1
    return int(text[:digits]) if digits else 0


def parse_header(data: bytes | bytearray) -> tuple[int, int, int]:
    """(modifier1, pktsize, modifier2) from the first 4 bytes."""
    return data[0], data[1] | (data[2] << 8), data[3]


def parse_vars(block: bytes | bytearray | memoryview, max_vars: int) -> tuple[dict[str, str], int]:
    """The vars of a uwsgi packet's var block, every length checked against the block.

    The hot loop has no explicit checks: reading a length past the end raises struct.error, and a
    key or value that runs past the end leaves `pos` beyond it; both are caught once, below.
    """
    data = bytes(block)
    text = data.decode("latin-1")  # one decode; latin-1 maps each byte to one character, same offsets
    u16 = _U16
    env: dict[str, str] = {}
    pos, end = 0, len(text)
    try:
        while pos < end:
            klen, = u16(data, pos)
            pos += 2
            key = text[pos : pos + klen]
            pos += klen
            vlen, = u16(data, pos)
            pos += 2
            env[key] = text[pos : pos + vlen]
            pos += vlen
    except struct.error:
        raise RequestError(400, f"invalid uwsgi packet: a length at offset {pos} runs past the end of the "
                                f"{end}-byte var block") from None
    if pos != end:
        raise RequestError(400, f"invalid uwsgi packet: the last value overflows the {end}-byte var block")
    if "" in env:
        raise RequestError(400, "invalid uwsgi packet: empty key")
    if len(env) > max_vars:
        raise RequestError(400, f"uwsgi packet has more than {max_vars} variables (raise max-vars)")
    return env, len(env)


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
