"""The uwsgi wire protocol, sans-IO: a 4-byte header, a var block of u16-length key/value pairs, then
CONTENT_LENGTH body bytes (reference §1). One request per connection.

Every u16 length is bounds-checked against the packet; a packet larger than buffer-size is an error
that names the option to raise. Must not import socket, os, select or time.
"""

from __future__ import annotations

from uisge.errors import RequestError

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
        digits = 0
        for ch in cl:  # uWSGI: leading decimal digits only
            if not "0" <= ch <= "9":
                break
            digits += 1
        self.content_length = int(cl[:digits]) if digits else 0


def parse_header(data: bytes | bytearray) -> tuple[int, int, int]:
    """(modifier1, pktsize, modifier2) from the first 4 bytes."""
    return data[0], data[1] | (data[2] << 8), data[3]


def parse_vars(block: bytes | bytearray, max_vars: int) -> tuple[dict[str, str], int]:
    env: dict[str, str] = {}
    pos, end, count = 0, len(block), 0
    while pos < end:
        if pos + 2 > end:
            raise RequestError(400, f"invalid uwsgi packet: truncated key length at offset {pos}")
        klen = block[pos] | (block[pos + 1] << 8)
        pos += 2
        if klen == 0:
            raise RequestError(400, "invalid uwsgi packet: empty key")
        if pos + klen + 2 > end:
            raise RequestError(400, f"invalid uwsgi packet: key of {klen} bytes overflows the packet")
        key = bytes(block[pos : pos + klen]).decode("latin-1")
        pos += klen
        vlen = block[pos] | (block[pos + 1] << 8)
        pos += 2
        if pos + vlen > end:
            raise RequestError(400, f"invalid uwsgi packet: value of {key} ({vlen} bytes) overflows the packet")
        env[key] = bytes(block[pos : pos + vlen]).decode("latin-1")
        pos += vlen
        count += 1
        if count > max_vars:
            raise RequestError(400, f"uwsgi packet has more than {max_vars} variables (raise max-vars)")
    return env, count


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
