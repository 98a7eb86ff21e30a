"""The load of bench/run.py's `ws-echo` scenario: CONNECTIONS websockets to URL, each sending a 32-byte text
message and waiting for its echo, again and again for SECONDS; prints `messages errors`. Raw frames (one
masked frame built once, replies read as whole frames), asyncio with uvloop when present, so that the
client costs far less per message than any server (it runs on the other CPU).

    python bench/ws_load.py HOST PORT PATH CONNECTIONS SECONDS
"""

from __future__ import annotations

import asyncio
import sys
import time

PAYLOAD = b"0123456789abcdef0123456789abcdef"
FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + b"\x01\x02\x03\x04" + bytes(
    b ^ (1, 2, 3, 4)[i % 4] for i, b in enumerate(PAYLOAD))
REPLY = 2 + len(PAYLOAD)  # the server's frame: unmasked, same payload


async def client(host: str, port: int, path: str, until: float, counts: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            counts[1] += 1
            return
        n = 0
        while time.monotonic() < until:
            writer.write(FRAME)
            reply = await reader.readexactly(REPLY)
            if reply[2:] != PAYLOAD:
                counts[1] += 1
                return
            n += 1
        counts[0] += n
        writer.close()
    except (OSError, asyncio.IncompleteReadError):
        counts[1] += 1


async def main(host: str, port: int, path: str, connections: int, seconds: float) -> None:
    counts = [0, 0]
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(host, port, path, until, counts) for _ in range(connections)))
    print(counts[0], counts[1])


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    host, port, path, connections, seconds = sys.argv[1:6]
    asyncio.run(main(host, int(port), path, int(connections), float(seconds)))
